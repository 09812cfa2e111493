// SPDX-License-Identifier: LGPL-2.1-or-later
/* URL parsing for definitions; see conf-url.h. ws(s):// and http(s):// share one split, so both
 * refuse the same things (user info, spaces, query or fragment in the authority). */

#include <assert.h>
#include <strings.h>

#include "conf-url.h"
#include "macro.h"
#include "parse-util.h"

/* A split SCHEME://HOST[:PORT][/PATH]. */
typedef struct URLParts {
        bool tls;
        char *authority;   /* HOST[:PORT] as written */
        char *host;
        uint16_t port;     /* 443 or 80 when not written */
        const char *path;  /* into the string, at its '/'; NULL when there is none */
} URLParts;

static void url_parts_done(URLParts *p) {
        free(p->authority);
        free(p->host);
}

/* tls_scheme and plain_scheme include "://"; matched without regard to case. */
static int url_split(const char *s, const char *tls_scheme, const char *plain_scheme, URLParts *ret) {
        _cleanup_free_ char *hostport = NULL, *host = NULL;
        URLParts p = {};
        const char *rest;
        int r;

        if (strncasecmp(s, tls_scheme, strlen(tls_scheme)) == 0) {
                p.tls = true;
                rest = s + strlen(tls_scheme);
        } else if (strncasecmp(s, plain_scheme, strlen(plain_scheme)) == 0)
                rest = s + strlen(plain_scheme);
        else
                return -EPROTONOSUPPORT;

        p.path = strchr(rest, '/');
        hostport = strndup(rest, p.path ? (size_t) (p.path - rest) : strlen(rest));
        if (!hostport)
                return -ENOMEM;
        if (!*hostport || strpbrk(hostport, "@ \t?#"))
                return -EINVAL;
        r = split_host_port(hostport, p.tls ? 443 : 80, &host, &p.port);
        if (r < 0 || !*host)
                return -EINVAL;
        p.authority = TAKE_PTR(hostport);
        p.host = TAKE_PTR(host);
        *ret = p;
        return 0;
}

int tunnel_url_parse(const char *s, TunnelURL *ret) {
        _cleanup_(url_parts_done) URLParts p = {};
        TunnelURL u = {};
        int r;

        assert(s);
        assert(ret);

        r = url_split(s, "wss://", "ws://", &p);
        if (r < 0)
                return r;
        u.tls = p.tls;
        u.port = p.port;
        /* The path names the upgrade endpoint; a bare URL means /connect, as inlets does. */
        u.path = strdup(p.path && p.path[1] ? p.path : "/connect");
        if (!u.path)
                return -ENOMEM;
        if (strpbrk(u.path, " \t\r\n")) {
                free(u.path);
                return -EINVAL;
        }
        u.host = TAKE_PTR(p.host);
        *ret = u;
        return 0;
}

void tunnel_url_done(TunnelURL *u) {
        assert(u);
        free(u->host);
        free(u->path);
        *u = (TunnelURL) {};
}

bool hostname_is_valid(const char *s) {
        size_t n;

        assert(s);
        n = strlen(s);
        if (n == 0 || n > 253 || s[0] == '.' || s[0] == '-')
                return false;
        for (const char *p = s; *p; p++)
                if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '-' ||
                      *p == '.'))
                        return false;
        return true;
}

int http_upstream_parse(const char *s, HttpUpstream *ret) {
        _cleanup_(url_parts_done) URLParts p = {};
        _cleanup_free_ char *match = NULL;
        const char *scheme, *eq, *path;
        HttpUpstream u = {};
        size_t plen;
        int r;

        assert(s);
        assert(ret);

        scheme = strstr(s, "://");
        eq = strchr(s, '=');
        if (!scheme)
                return -EINVAL;
        if (eq && eq < scheme) {
                match = strndup(s, (size_t) (eq - s));
                if (!match)
                        return -ENOMEM;
                if (!hostname_is_valid(match) || strstr(match, ".."))
                        return -EINVAL;
                for (char *c = match; *c; c++)
                        *c = ascii_tolower(*c);
                /* One form of the name, as the exit server routes it: "app.test." is "app.test". */
                if (strlen(match) > 1 && match[strlen(match) - 1] == '.')
                        match[strlen(match) - 1] = 0;
                s = eq + 1;
        }
        r = url_split(s, "https://", "http://", &p);
        if (r < 0)
                return r;
        path = p.path ?: "";
        if (strpbrk(path, " \t\r\n?#"))
                return -EINVAL;
        plen = strlen(path);
        while (plen > 0 && path[plen - 1] == '/')
                plen--;
        u.prefix = strndup(path, plen);
        if (!u.prefix)
                return -ENOMEM;
        u.tls = p.tls;
        u.port = p.port;
        u.authority = TAKE_PTR(p.authority);
        u.host = TAKE_PTR(p.host);
        u.match = TAKE_PTR(match);
        *ret = u;
        return 0;
}

void http_upstream_done(HttpUpstream *u) {
        assert(u);
        free(u->match);
        free(u->host);
        free(u->authority);
        free(u->prefix);
        *u = (HttpUpstream) {};
}
