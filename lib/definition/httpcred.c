// SPDX-License-Identifier: LGPL-2.1-or-later
/* HTTP credentials: htpasswd files, bearer token files, the Authorization field; see
 * httpcred.h. */

#include <assert.h>
#include <crypt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "crypto-util.h"
#include "encoding.h"
#include "fileio.h"
#include "httpcred.h"
#include "string-util.h"

/* explicit_bzero() that takes NULL (GCC's -Wnonnull cannot always see a pointer was checked). */
static void erase(void *p, size_t n) {
        if (p)
                explicit_bzero(p, n);
}

/* Files are read whole; this bounds them (10,000 users of a bcrypt hash take 0.7 MiB). */
#define CREDENTIAL_FILE_MAX (8 * 1024 * 1024)

typedef struct HtpasswdUser {
        char *user;
        char *hash;
} HtpasswdUser;

struct Htpasswd {
        HtpasswdUser *users;
        size_t n_users;
        uint8_t decoy_key[32];  /* picks the hash an unknown user is checked against */
};

struct BearerTokens {
        uint8_t (*digests)[32];
        size_t n;
};

Htpasswd *htpasswd_free(Htpasswd *h) {
        if (!h)
                return NULL;
        for (size_t i = 0; i < h->n_users; i++) {
                free(h->users[i].user);
                if (h->users[i].hash)
                        erase(h->users[i].hash, strlen(h->users[i].hash));
                free(h->users[i].hash);
        }
        free(h->users);
        free(h);
        return NULL;
}

size_t htpasswd_users(const Htpasswd *h) {
        return h ? h->n_users : 0;
}

/* The next line of data[*pos, size): its start and length without the line end, or false at
 * the end. A line is cut at LF; a CR before it is dropped. */
static bool next_line(const char *data, size_t size, size_t *pos, const char **ret, size_t *ret_len) {
        const char *p, *nl;
        size_t n;

        if (*pos >= size)
                return false;
        p = data + *pos;
        nl = memchr(p, '\n', size - *pos);
        n = nl ? (size_t) (nl - p) : size - *pos;
        *pos += n + (nl ? 1 : 0);
        if (n > 0 && p[n - 1] == '\r')
                n--;
        *ret = p;
        *ret_len = n;
        return true;
}

/* Why hash cannot be used, or NULL when crypt_r() verifies it and it is not a weak kind. */
static const char *hash_problem(const char *hash) {
        if (startswith(hash, "$apr1$"))
                return "$apr1$ (Apache MD5) hashes are not supported; make the file with htpasswd -B (bcrypt) "
                       "or -5 (SHA-512)";
        if (startswith(hash, "{SHA}"))
                return "{SHA} hashes are unsalted SHA-1 and not supported; make the file with htpasswd -B";
        if (!startswith(hash, "$"))
                return "plain-text and DES crypt passwords are not supported; make the file with htpasswd -B";
        switch (crypt_checksalt(hash)) {
        case CRYPT_SALT_OK:
                return NULL;
        case CRYPT_SALT_METHOD_LEGACY:
                /* libxcrypt counts SHA-crypt as legacy next to yescrypt; htpasswd -2/-5 make it
                 * and it is salted and iterated: accepted. MD5-crypt and the like are not. */
                if (startswith(hash, "$5$") || startswith(hash, "$6$"))
                        return NULL;
                return "this hash method is too weak to be accepted; make the file with htpasswd -B";
        default:
                return "not a hash this system's crypt() verifies (bcrypt $2y$, SHA-crypt $5$/$6$, yescrypt $y$)";
        }
}

static bool user_name_ok(const char *s, size_t n) {
        if (n == 0 || n > 255)
                return false;
        for (size_t i = 0; i < n; i++)
                if ((unsigned char) s[i] < 0x20 || s[i] == 0x7f)
                        return false;
        return true;
}

static int htpasswd_add(Htpasswd *h, const char *line, size_t n, const char *name, unsigned line_no,
                        char **ret_error) {
        const char *colon = memchr(line, ':', n);
        _cleanup_free_ char *user = NULL, *hash = NULL;
        const char *problem;
        HtpasswdUser *t;

        if (!colon || !user_name_ok(line, (size_t) (colon - line)))
                return errorf(ret_error, -EINVAL, "%s:%u: expected USER:HASH (as htpasswd writes it)", name,
                              line_no);
        user = strndup(line, (size_t) (colon - line));
        hash = strndup(colon + 1, n - (size_t) (colon - line) - 1);
        if (!user || !hash)
                return -ENOMEM;
        problem = hash_problem(hash);
        if (problem) {
                explicit_bzero(hash, strlen(hash));
                return errorf(ret_error, -EINVAL, "%s:%u: user %s: %s", name, line_no, user, problem);
        }
        for (size_t i = 0; i < h->n_users; i++)
                if (streq(h->users[i].user, user)) {
                        explicit_bzero(hash, strlen(hash));
                        return errorf(ret_error, -EINVAL, "%s:%u: user %s is in the file twice", name, line_no,
                                      user);
                }
        if (h->n_users >= HTPASSWD_USERS_MAX)
                return errorf(ret_error, -E2BIG, "%s:%u: more than %u users", name, line_no, HTPASSWD_USERS_MAX);
        t = realloc(h->users, sizeof(*t) * (h->n_users + 1));
        if (!t)
                return -ENOMEM;
        h->users = t;
        h->users[h->n_users++] = (HtpasswdUser) { TAKE_PTR(user), TAKE_PTR(hash) };
        return 0;
}

int htpasswd_parse(const char *data, size_t size, const char *name, Htpasswd **ret, char **ret_error) {
        _cleanup_(htpasswd_freep) Htpasswd *h = NULL;
        size_t pos = 0, n;
        unsigned line_no = 0;
        const char *line;
        int r;

        assert(data || size == 0);
        assert(name);
        assert(ret);

        h = new0(Htpasswd, 1);
        if (!h)
                return -ENOMEM;
        r = random_bytes(h->decoy_key, sizeof(h->decoy_key));
        if (r < 0)
                return r;
        while (next_line(data, size, &pos, &line, &n)) {
                line_no++;
                if (n > HTPASSWD_LINE_MAX)
                        return errorf(ret_error, -EINVAL, "%s:%u: line longer than %u bytes", name, line_no,
                                      HTPASSWD_LINE_MAX);
                if (memchr(line, 0, n))
                        return errorf(ret_error, -EINVAL, "%s:%u: NUL byte in the line", name, line_no);
                while (n > 0 && (line[n - 1] == ' ' || line[n - 1] == '\t'))
                        n--;
                if (n == 0 || line[0] == '#')
                        continue;
                r = htpasswd_add(h, line, n, name, line_no, ret_error);
                if (r < 0)
                        return r;
        }
        if (h->n_users == 0)
                return errorf(ret_error, -EINVAL, "%s: no users in the file", name);
        *ret = TAKE_PTR(h);
        return 0;
}

/* A regular file, read whole; errors name the path. */
static int read_credential_file(const char *path, char **ret, size_t *ret_size, char **ret_error) {
        struct stat st;
        int r;

        if (stat(path, &st) < 0)
                return errorf(ret_error, -errno, "%s: %s", path, strerror(errno));
        if (!S_ISREG(st.st_mode))
                return errorf(ret_error, -EINVAL, "%s: not a regular file", path);
        r = read_full_file(path, CREDENTIAL_FILE_MAX, ret, ret_size);
        if (r < 0)
                return errorf(ret_error, r, "%s: %s", path,
                              r == -EFBIG ? "larger than 8 MiB" : strerror(-r));
        return 0;
}

int htpasswd_load(const char *path, Htpasswd **ret, char **ret_error) {
        _cleanup_free_ char *data = NULL;
        size_t size;
        int r;

        assert(path);
        r = read_credential_file(path, &data, &size, ret_error);
        if (r < 0)
                return r;
        r = htpasswd_parse(data, size, path, ret, ret_error);
        explicit_bzero(data, size);
        return r;
}

int htpasswd_new_single(const char *user, const char *password, Htpasswd **ret) {
        _cleanup_(htpasswd_freep) Htpasswd *h = NULL;
        _cleanup_free_ struct crypt_data *cd = NULL;
        _cleanup_free_ char *hash = NULL, *name = NULL;
        char setting[CRYPT_GENSALT_OUTPUT_SIZE];
        const char *out;

        assert(user);
        assert(password);
        assert(ret);

        if (!user_name_ok(user, strlen(user)) || strchr(user, ':') || strlen(password) > HTTP_PASSWORD_MAX)
                return -EINVAL;
        cd = calloc(1, sizeof(*cd));
        if (!cd)
                return -ENOMEM;
        /* NULL random bytes: libcrypt reads them from the kernel. */
        if (!crypt_gensalt_rn("$y$", 0, NULL, 0, setting, sizeof(setting)))
                return -errno ?: -EINVAL;
        out = crypt_r(password, setting, cd);
        if (out && out[0] != '*')
                hash = strdup(out);
        erase(cd, sizeof(*cd));
        if (!out || out[0] == '*')
                return -EINVAL;
        name = strdup(user);
        h = new0(Htpasswd, 1);
        if (!hash || !name || !h || !(h->users = new0(HtpasswdUser, 1)))
                return -ENOMEM;
        if (random_bytes(h->decoy_key, sizeof(h->decoy_key)) < 0)
                return -EIO;
        h->users[0] = (HtpasswdUser) { TAKE_PTR(name), TAKE_PTR(hash) };
        h->n_users = 1;
        *ret = TAKE_PTR(h);
        return 0;
}

const char *htpasswd_lookup(const Htpasswd *h, const char *user, size_t user_len, bool *ret_known) {
        _cleanup_free_ char *keyed = NULL;
        uint8_t d[32];

        assert(h);
        assert(h->n_users > 0);
        assert(user || user_len == 0);
        assert(ret_known);

        for (size_t i = 0; i < h->n_users; i++)
                if (strlen(h->users[i].user) == user_len && memcmp(h->users[i].user, user, user_len) == 0) {
                        *ret_known = true;
                        return h->users[i].hash;
                }
        /* Not in the file: a user's hash picked by the name under a key of this file's own, so
         * the same name always costs the same and, in a file mixing kinds and costs, an unknown
         * name costs what some real user costs. */
        *ret_known = false;
        keyed = malloc(sizeof(h->decoy_key) + user_len);
        if (!keyed)
                return h->users[0].hash;
        memcpy(keyed, h->decoy_key, sizeof(h->decoy_key));
        memcpy(keyed + sizeof(h->decoy_key), user, user_len);
        if (sha256(keyed, sizeof(h->decoy_key) + user_len, d) < 0)
                return h->users[0].hash;
        return h->users[((size_t) d[0] << 24 | (size_t) d[1] << 16 | (size_t) d[2] << 8 | d[3]) % h->n_users].hash;
}

int htpasswd_check_hash(const char *hash, bool known, const char *password, size_t password_len) {
        _cleanup_free_ struct crypt_data *cd = NULL;
        _cleanup_free_ char *pw = NULL;
        const char *out;
        bool ok;

        assert(hash);
        assert(password || password_len == 0);

        if (password_len > HTTP_PASSWORD_MAX || memchr(password, 0, password_len))
                return 0;
        cd = calloc(1, sizeof(*cd));
        pw = strndup(password, password_len);
        if (!cd || !pw)
                return -ENOMEM;
        out = crypt_r(pw, hash, cd);
        explicit_bzero(pw, password_len);
        ok = known && out && out[0] != '*' && secret_equal(out, strlen(out), hash, strlen(hash));
        erase(cd, sizeof(*cd));
        return ok;
}

int htpasswd_verify(const Htpasswd *h, const char *user, size_t user_len, const char *password,
                    size_t password_len) {
        bool known;
        const char *hash = htpasswd_lookup(h, user, user_len, &known);

        return htpasswd_check_hash(hash, known, password, password_len);
}

BearerTokens *bearer_tokens_free(BearerTokens *b) {
        if (!b)
                return NULL;
        if (b->digests) {
                explicit_bzero(b->digests, sizeof(*b->digests) * b->n);
                free(b->digests);
        }
        free(b);
        return NULL;
}

int bearer_tokens_parse(const char *data, size_t size, const char *name, BearerTokens **ret, char **ret_error) {
        _cleanup_(bearer_tokens_freep) BearerTokens *b = NULL;
        size_t pos = 0, n;
        unsigned line_no = 0;
        const char *line;
        int r;

        assert(data || size == 0);
        assert(name);
        assert(ret);

        b = new0(BearerTokens, 1);
        if (!b)
                return -ENOMEM;
        while (next_line(data, size, &pos, &line, &n)) {
                line_no++;
                while (n > 0 && (line[n - 1] == ' ' || line[n - 1] == '\t'))
                        n--;
                if (n == 0 || line[0] == '#')
                        continue;
                if (n < BEARER_TOKEN_MIN || n > HTTP_CREDENTIALS_MAX)
                        return errorf(ret_error, -EINVAL, "%s:%u: a token must be %u to %u bytes long", name,
                                      line_no, BEARER_TOKEN_MIN, HTTP_CREDENTIALS_MAX);
                for (size_t i = 0; i < n; i++)
                        if ((unsigned char) line[i] <= ' ' || (unsigned char) line[i] >= 0x7f)
                                return errorf(ret_error, -EINVAL,
                                              "%s:%u: a token is printable ASCII without spaces", name, line_no);
                if (b->n >= BEARER_TOKENS_MAX)
                        return errorf(ret_error, -E2BIG, "%s:%u: more than %u tokens", name, line_no,
                                      BEARER_TOKENS_MAX);
                uint8_t (*t)[32] = realloc(b->digests, sizeof(*t) * (b->n + 1));
                if (!t)
                        return -ENOMEM;
                b->digests = t;
                r = sha256(line, n, b->digests[b->n]);
                if (r < 0)
                        return r;
                b->n++;
        }
        if (b->n == 0)
                return errorf(ret_error, -EINVAL, "%s: no tokens in the file", name);
        *ret = TAKE_PTR(b);
        return 0;
}

int bearer_tokens_load(const char *path, BearerTokens **ret, char **ret_error) {
        _cleanup_free_ char *data = NULL;
        size_t size;
        int r;

        assert(path);
        r = read_credential_file(path, &data, &size, ret_error);
        if (r < 0)
                return r;
        r = bearer_tokens_parse(data, size, path, ret, ret_error);
        explicit_bzero(data, size);
        return r;
}

bool bearer_tokens_match(const BearerTokens *b, const char *token, size_t len) {
        uint8_t d[32];
        bool found = false;

        assert(b);
        if (len > HTTP_CREDENTIALS_MAX || sha256(token, len, d) < 0)
                return false;
        for (size_t i = 0; i < b->n; i++)
                found |= secret_equal((const char *) b->digests[i], 32, (const char *) d, 32);
        explicit_bzero(d, sizeof(d));
        return found;
}

void http_credentials_done(HttpCredentials *c) {
        assert(c);
        if (c->buf) {
                explicit_bzero(c->buf, c->buf_len);
                free(c->buf);
        }
        *c = (HttpCredentials) {};
}

int http_authorization_parse(const char *value, size_t len, HttpCredentials *ret) {
        _cleanup_(http_credentials_done) HttpCredentials c = {};
        size_t scheme_len, off;
        const char *cred;
        size_t cred_len;
        int r;

        assert(value || len == 0);
        assert(ret);

        scheme_len = 0;
        while (scheme_len < len && value[scheme_len] != ' ' && value[scheme_len] != '\t')
                scheme_len++;
        off = scheme_len;
        while (off < len && (value[off] == ' ' || value[off] == '\t'))
                off++;
        if (off == scheme_len || off >= len)
                return -EBADMSG;
        cred = value + off;
        cred_len = len - off;
        while (cred_len > 0 && (cred[cred_len - 1] == ' ' || cred[cred_len - 1] == '\t'))
                cred_len--;
        for (size_t i = 0; i < cred_len; i++)
                if ((unsigned char) cred[i] <= ' ' || (unsigned char) cred[i] >= 0x7f)
                        return -EBADMSG;

        if (scheme_len == 5 && strncasecmp(value, "Basic", 5) == 0) {
                _cleanup_free_ char *b64 = NULL;
                char *colon;

                /* 2048 decoded bytes are 2732 in base64. */
                if (cred_len > (HTTP_CREDENTIALS_MAX + 2) / 3 * 4)
                        return -EBADMSG;
                b64 = strndup(cred, cred_len);
                if (!b64)
                        return -ENOMEM;
                r = unbase64mem(b64, &c.buf, &c.buf_len);
                if (r == -ENOMEM)
                        return r;
                if (r < 0 || c.buf_len > HTTP_CREDENTIALS_MAX)
                        return -EBADMSG;
                colon = memchr(c.buf, ':', c.buf_len);
                if (!colon)
                        return -EBADMSG;
                c.scheme = HTTP_AUTH_BASIC;
                c.user = c.buf;
                c.user_len = (size_t) (colon - c.buf);
                c.password = colon + 1;
                c.password_len = c.buf_len - c.user_len - 1;
        } else if (scheme_len == 6 && strncasecmp(value, "Bearer", 6) == 0) {
                if (cred_len > HTTP_CREDENTIALS_MAX)
                        return -EBADMSG;
                c.buf = strndup(cred, cred_len);
                if (!c.buf)
                        return -ENOMEM;
                c.buf_len = cred_len;
                c.scheme = HTTP_AUTH_BEARER;
                c.token = c.buf;
                c.token_len = cred_len;
        } else
                return -EBADMSG;
        *ret = c;
        c = (HttpCredentials) {};
        return 0;
}
