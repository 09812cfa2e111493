// SPDX-License-Identifier: LGPL-2.1-or-later
/* URL parsing for definitions; see conf-url.h. ws(s):// and http(s):// share one split, so both
 * refuse the same things (user info, spaces, query or fragment in the authority). */

#include <arpa/inet.h>
#include <assert.h>
#include <stdio.h>
#include <strings.h>

#include "conf-url.h"
#include "encoding.h"
#include "in-addr-prefix.h"
#include "macro.h"
#include "parse-util.h"
#include "socket-util.h"
#include "string-util.h"

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

bool dns_name_is_valid(const char *s) {
        const char *label = s, *last = s;
        size_t labels = 0;
        bool digits_only = true;

        assert(s);
        if (strlen(s) > 253)
                return false;
        for (const char *p = s;; p++) {
                if (*p == '.' || *p == 0) {
                        size_t n = (size_t) (p - label);
                        if (n == 0 || n > 63 || label[0] == '-' || p[-1] == '-')
                                return false;
                        labels++;
                        last = label;
                        if (*p == 0)
                                break;
                        label = p + 1;
                        continue;
                }
                if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '-'))
                        return false;
        }
        for (const char *p = last; *p; p++)
                if (*p < '0' || *p > '9')
                        digits_only = false;
        return labels >= 2 && !digits_only;
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

/* %XX decoded; control bytes refused (they would end the Proxy-Authorization line). */
static int percent_decode(const char *s, size_t n, char **ret) {
        _cleanup_free_ char *d = malloc(n + 1);
        size_t o = 0;

        if (!d)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                int hi, lo;
                unsigned char c = (unsigned char) s[i];

                if (c == '%') {
                        if (i + 2 >= n)
                                return -EINVAL;
                        hi = unhexchar(s[i + 1]);
                        lo = unhexchar(s[i + 2]);
                        if (hi < 0 || lo < 0)
                                return -EINVAL;
                        c = (unsigned char) (hi << 4 | lo);
                        i += 2;
                }
                if (c < 0x20 || c == 0x7f)
                        return -EINVAL;
                d[o++] = (char) c;
        }
        d[o] = 0;
        *ret = TAKE_PTR(d);
        return 0;
}

/* Whether HOST[:PORT] (IPv6 in brackets) has the port. */
static bool has_port(const char *authority) {
        const char *c = authority[0] == '[' ? strchr(authority, ']') : authority;
        return c && strchr(c, ':');
}

int proxy_url_parse(const char *s, ProxyURL *ret, const char **reason) {
        _cleanup_(url_parts_done) URLParts p = {};
        _cleanup_(proxy_url_done) ProxyURL u = {};
        _cleanup_free_ char *rest = NULL;
        const char *auth, *at = NULL, *colon;
        int r;

        assert(s);
        assert(ret);
        assert(reason);

        *reason = "expected [http://][USER[:PASSWORD]@]HOST[:PORT] or none";
        if (strncasecmp(s, "http://", 7) == 0)
                auth = s + 7;
        else if (strstr(s, "://")) {
                *reason = "only an http:// proxy is supported (HTTP CONNECT; not https:// or socks)";
                return -EPROTONOSUPPORT;
        } else
                auth = s; /* no scheme: http://, as curl reads it */
        for (const char *c = auth; *c && *c != '/'; c++)
                if (*c == '@')
                        at = c; /* the last one: a password may hold '@' only encoded, user names neither */
        if (at) {
                colon = memchr(auth, ':', (size_t) (at - auth));
                r = percent_decode(auth, (size_t) ((colon ?: at) - auth), &u.user);
                if (r == 0 && colon)
                        r = percent_decode(colon + 1, (size_t) (at - colon - 1), &u.password);
                if (r < 0 || !*u.user || strchr(u.user, ':')) {
                        *reason = "the user name or password of the proxy URL is not valid (%XX for special bytes)";
                        return r == -ENOMEM ? r : -EINVAL;
                }
                auth = at + 1;
        }
        if (asprintf(&rest, "http://%s", auth) < 0)
                return -ENOMEM;
        r = url_split(rest, "https://", "http://", &p);
        if (r < 0)
                return r == -ENOMEM ? r : -EINVAL;
        /* Without a port, curl's 1080 (not the scheme's 80): the same proxy as curl's. */
        if (!has_port(p.authority))
                p.port = 1080;
        if (p.path && !streq(p.path, "/"))
                return -EINVAL;
        for (const char *c = p.host; *c; c++)
                if ((unsigned char) *c <= 0x20 || *c == 0x7f)
                        return -EINVAL;
        u.host = TAKE_PTR(p.host);
        u.port = p.port;
        *reason = NULL;
        *ret = u;
        u = (ProxyURL) {};
        return 0;
}

void proxy_url_done(ProxyURL *u) {
        assert(u);
        free(u->user);
        erase_and_free(u->password);
        free(u->host);
        *u = (ProxyURL) {};
}

/* One no_proxy entry against host:port: "*", a name (".example.com" or "example.com": it and
 * every name under it), an address or a prefix ("10.0.0.0/8", "[::1]"), each with an optional
 * ":PORT" that must match too. */
static bool no_proxy_entry_matches(const char *e, size_t n, const char *host, uint16_t port) {
        _cleanup_free_ char *entry = strndup(e, n), *name = NULL;
        SocketAddress a;
        AddressPrefix prefix;
        const char *reason, *colon, *d;
        bool has_port;
        uint16_t eport;
        size_t hl, nl;

        if (!entry)
                return false;
        /* A bare address or prefix (IPv6 ones have colons of their own). */
        if (address_prefix_parse(entry, &prefix, &reason) >= 0)
                return socket_address_parse(host, 1, &a) >= 0 && address_prefix_match(&prefix, &a);
        colon = strchr(entry, ':');
        has_port = entry[0] == '[' ? strstr(entry, "]:") != NULL : colon && colon == strrchr(entry, ':');
        if (split_host_port(entry, 1, &name, &eport) < 0)
                return false;
        if (has_port && eport != port)
                return false;
        if (address_prefix_parse(name, &prefix, &reason) >= 0)
                return socket_address_parse(host, 1, &a) >= 0 && address_prefix_match(&prefix, &a);
        d = name[0] == '.' ? name + 1 : name;
        /* "example.com." is "example.com", in the entry and in the host alike. */
        hl = strlen(host);
        nl = strlen(d);
        if (hl > 1 && host[hl - 1] == '.')
                hl--;
        if (nl > 1 && d[nl - 1] == '.')
                nl--;
        if (nl == 0 || nl > hl || strncasecmp(host + hl - nl, d, nl) != 0)
                return false;
        return hl == nl || host[hl - nl - 1] == '.';
}

bool no_proxy_matches(const char *list, const char *host, uint16_t port) {
        assert(host);

        if (!list)
                return false;
        /* "*" alone (spaces aside) exempts every host; in a list it is no entry (as for curl). */
        size_t a = strspn(list, " \t"), z = strlen(list);
        while (z > a && (list[z - 1] == ' ' || list[z - 1] == '\t'))
                z--;
        if (z - a == 1 && list[a] == '*')
                return true;
        for (const char *p = list; *p;) {
                size_t n;

                p += strspn(p, ", \t");
                n = strcspn(p, ", \t");
                if (n > 0 && no_proxy_entry_matches(p, n, host, port))
                        return true;
                p += n;
        }
        return false;
}

int forward_request_parse(const char *s, uint32_t *ret_id, char **ret_host, uint16_t *ret_port) {
        _cleanup_free_ char *host = NULL;
        const char *sp;
        SocketAddress a;
        uint64_t id = 0;
        uint16_t port;

        assert(s);
        assert(ret_id);
        assert(ret_host);
        assert(ret_port);

        sp = strchr(s, ' ');
        if (!sp || sp == s || s[0] == '0' || sp - s > 10)
                return -EINVAL;
        for (const char *p = s; p < sp; p++) {
                if (*p < '0' || *p > '9')
                        return -EINVAL;
                id = id * 10 + (uint64_t) (*p - '0');
        }
        if (id == 0 || id > INT32_MAX)
                return -EINVAL;
        /* HOST:PORT, [IPv6]:PORT: nothing after, no spaces, a name or a numeric address. */
        if (strpbrk(sp + 1, " \t") || split_host_port(sp + 1, 1, &host, &port) < 0 || !*host)
                return -EINVAL;
        if (sp[1] != '[' && strchr(sp + 1, ':') != strrchr(sp + 1, ':'))
                return -EINVAL; /* an unbracketed IPv6 address: which colon ends it? */
        if (!strchr(sp + 1, ':'))
                return -EINVAL; /* the port is not optional */
        /* A name, an IPv4 address, or an IPv6 address in brackets, each as inet_pton() reads
         * it: what is checked against AllowForwardTo= must be exactly what is dialled. */
        if (sp[1] == '[' ? inet_pton(AF_INET6, host, &a.in6.sin6_addr) != 1
                         : !hostname_is_valid(host) && inet_pton(AF_INET, host, &a.in.sin_addr) != 1)
                return -EINVAL;
        *ret_id = (uint32_t) id;
        *ret_host = TAKE_PTR(host);
        *ret_port = port;
        return 0;
}
