// SPDX-License-Identifier: LGPL-2.1-or-later
/* Token loading for definitions; see conf-token.h. The token is a secret: erased on free, read
 * with a size bound, and never part of an error message. */

#include <assert.h>
#include <stdio.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf-token.h"
#include "fileio.h"
#include "macro.h"
#include "string-util.h"

#define PROXY_PASSWORD_MAX 1024

static bool token_chars_ok(const char *t) {
        for (; *t; t++)
                if ((unsigned char) *t < 0x21 || (unsigned char) *t == 0x7f)
                        return false;
        return true;
}

/* NAME.token beside NAME.conf: the file inletsd@.service loads as credential "token". */
static int token_beside(const char *path, char **ret) {
        size_t n = path ? strlen(path) : 0;

        *ret = NULL;
        if (n <= 5 || !streq(path + n - 5, ".conf"))
                return 0;
        return asprintf(ret, "%.*s.token", (int) n - 5, path) < 0 ? -ENOMEM : 1;
}

static bool same_file(const char *a, const char *b) {
        struct stat sa, sb;

        /* stat() needs no read permission on the file itself, only on the way to it. */
        return streq(a, b) ||
               (stat(a, &sa) >= 0 && stat(b, &sb) >= 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino);
}

/* A file a definition names: relative to the definition's directory. */
static int path_beside_definition(const Definition *d, const char *file, char **ret) {
        if (file[0] != '/' && d->path && strchr(d->path, '/')) {
                const char *slash = strrchr(d->path, '/');
                return asprintf(ret, "%.*s/%s", (int) (slash - d->path), d->path, file) < 0 ? -ENOMEM : 0;
        }
        *ret = strdup(file);
        return *ret ? 0 : -ENOMEM;
}

/* The file the token is read from, in the order of conf-token.h. creds: $CREDENTIALS_DIRECTORY. */
static int token_path(const Definition *d, const char *creds, char **ret, char **ret_error) {
        _cleanup_free_ char *p = NULL, *beside = NULL, *cred = NULL;
        int r;

        r = token_beside(d->path, &beside);
        if (r < 0)
                return r;
        if (creds && asprintf(&cred, "%s/token", creds) < 0)
                return -ENOMEM;

        if (d->token_file) {
                r = path_beside_definition(d, d->token_file, &p);
                if (r < 0)
                        return r;
                /* TokenFile= naming the definition's own NAME.token is the file the unit
                 * already handed over as credential "token": read systemd's copy, as the
                 * root-only original is not for the daemon's own user to open. */
                if (cred && beside && access(cred, F_OK) >= 0 && same_file(p, beside)) {
                        free(p);
                        p = TAKE_PTR(cred);
                }
        } else if (cred)
                p = TAKE_PTR(cred);
        else if (beside) {
                /* NAME.token beside NAME.conf: what LoadCredential= hands over under
                 * systemd, read directly when run by hand or by inletsctl check. */
                p = TAKE_PTR(beside);
                if (access(p, F_OK) < 0)
                        return errorf(ret_error, -ENOKEY,
                                         "%s: no token: set Token= or TokenFile=, pass credential 'token', "
                                         "or create %s", d->path, p);
        } else
                return errorf(ret_error, -ENOKEY,
                                 "%s: no token: set Token= or TokenFile=, or pass credential 'token'",
                                 d->path ?: d->name);
        *ret = TAKE_PTR(p);
        return 0;
}

int definition_load_token(Definition *d, char **ret_error) {
        _cleanup_free_ char *p = NULL;
        const char *source, *creds = getenv("CREDENTIALS_DIRECTORY");
        char *data = NULL, *t;
        int r;

        assert(d);

        if (d->token) {
                source = "Token=";
                t = strstrip(d->token);
                memmove(d->token, t, strlen(t) + 1);
        } else {
                r = token_path(d, creds, &p, ret_error);
                if (r < 0)
                        return r;
                source = p;
                r = read_full_file(p, TOKEN_MAX_LEN, &data, NULL);
                if (r < 0)
                        return errorf(ret_error, r, "%s: cannot read token file %s: %s%s", d->path ?: d->name, p,
                                         r == -EFBIG ? "file too large" : strerror(-r),
                                         r == -EACCES && creds ?
                                         " (under inletsd@.service leave TokenFile= unset, or name NAME.token beside "
                                         "the definition: the unit passes that file as credential 'token')" : "");
                t = strstrip(data);
                d->token = strdup(t);
                erase_and_free(data);
                if (!d->token)
                        return -ENOMEM;
        }
        if (strlen(d->token) < TOKEN_MIN_LEN)
                return errorf(ret_error, -EINVAL, "%s: token from %s is shorter than %d bytes",
                                 d->path ?: d->name, source, TOKEN_MIN_LEN);
        if (!token_chars_ok(d->token))
                return errorf(ret_error, -EINVAL,
                                 "%s: token from %s contains spaces or control characters", d->path ?: d->name,
                                 source);
        return 0;
}

int definition_load_proxy_password(Definition *d, char **ret_error) {
        _cleanup_free_ char *p = NULL;
        const char *creds = getenv("CREDENTIALS_DIRECTORY");
        char *data = NULL, *t;
        int r;

        assert(d);

        if (!d->proxy_url.user || d->proxy_url.password)
                return 0;
        if (d->proxy_password_file) {
                r = path_beside_definition(d, d->proxy_password_file, &p);
                if (r < 0)
                        return r;
        } else if (creds) {
                if (asprintf(&p, "%s/proxy-password", creds) < 0)
                        return -ENOMEM;
                if (access(p, F_OK) < 0)
                        return 0;
        } else
                return 0;
        r = read_full_file(p, PROXY_PASSWORD_MAX, &data, NULL);
        if (r < 0)
                return errorf(ret_error, r, "%s: cannot read the proxy password file %s: %s", d->path ?: d->name, p,
                              r == -EFBIG ? "file too large" : strerror(-r));
        t = strstrip(data);
        for (const char *c = t; *c; c++)
                if ((unsigned char) *c < 0x20 || *c == 0x7f) {
                        erase_and_free(data);
                        return errorf(ret_error, -EINVAL, "%s: the proxy password in %s has control characters",
                                      d->path ?: d->name, p);
                }
        d->proxy_url.password = strdup(t);
        erase_and_free(data);
        return d->proxy_url.password ? 0 : -ENOMEM;
}
