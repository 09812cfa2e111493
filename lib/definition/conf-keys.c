// SPDX-License-Identifier: LGPL-2.1-or-later
/* The table of definition keys and their value parsers, fed by the INI reader (ini.c). Errors
 * name file:line and never echo a secret; unknown keys are warnings so that newer files still
 * load on older daemons. */

#include <arpa/inet.h>
#include <assert.h>
#include <stdio.h>
#include <strings.h>

#include "access.h"
#include "conf-url.h"
#include "conf-keys.h"
#include "crypto-util.h"
#include "encoding.h"
#include "ini.h"
#include "log.h"
#include "macro.h"
#include "parse-util.h"
#include "socket-util.h"
#include "string-util.h"
#include "time-util.h"

/* ---- value parsers: return 0, or -errno with an optional static reason ---- */

typedef int (*ConfParser)(const char *value, void *field, Definition *d, const char **reason);

static int conf_string(const char *value, void *field, Definition *d, const char **reason) {
        char **s = field, *v = NULL;
        if (*value && !(v = strdup(value)))
                return -ENOMEM;
        free(*s);
        *s = v;
        return 0;
}

static int conf_secret(const char *value, void *field, Definition *d, const char **reason) {
        char **s = field, *v = NULL;
        if (*value && !(v = strdup(value)))
                return -ENOMEM;
        erase_and_free(*s);
        *s = v;
        return 0;
}

static int conf_bool(const char *value, void *field, Definition *d, const char **reason) {
        int r = parse_boolean(value);
        if (r < 0)
                return r;
        *(int *) field = r;
        return 0;
}

static int conf_role(const char *value, void *field, Definition *d, const char **reason) {
        Role r = role_from_string(value);
        if (r < 0) {
                *reason = "expected server, client or fileserver";
                return -EINVAL;
        }
        *(Role *) field = r;
        return 0;
}

static int conf_mode(const char *value, void *field, Definition *d, const char **reason) {
        Mode m = mode_from_string(value);
        if (m < 0) {
                *reason = "expected tcp or http";
                return -EINVAL;
        }
        *(Mode *) field = m;
        return 0;
}

static int conf_sec(const char *value, void *field, Definition *d, const char **reason) {
        uint64_t u;
        int r = parse_sec(value, &u);
        if (r < 0) {
                *reason = "expected a time span such as 30, 30s, 500ms or 2min";
                return r;
        }
        *(uint64_t *) field = u;
        return 0;
}

static int conf_positive_sec(const char *value, void *field, Definition *d, const char **reason) {
        int r = conf_sec(value, field, d, reason);
        if (r >= 0 && *(uint64_t *) field == 0) {
                *reason = "must be greater than zero";
                return -ERANGE;
        }
        return r;
}

/* ResumeSec=: 0 turns resumption off; at most an hour (held streams keep their sockets). */
static int conf_resume_sec(const char *value, void *field, Definition *d, const char **reason) {
        int r = conf_sec(value, field, d, reason);
        if (r >= 0 && *(uint64_t *) field > 3600 * USEC_PER_SEC) {
                *reason = "at most 1h";
                return -ERANGE;
        }
        return r;
}

/* UDPIdleSec=: 1 s to 1 h (a flow holds a socket and a stream while it lasts). */
static int conf_udp_idle_sec(const char *value, void *field, Definition *d, const char **reason) {
        int r = conf_positive_sec(value, field, d, reason);
        if (r >= 0 && (*(uint64_t *) field < USEC_PER_SEC || *(uint64_t *) field > 3600 * USEC_PER_SEC)) {
                *reason = "expected 1s to 1h";
                return -ERANGE;
        }
        return r;
}

static int conf_unsigned(const char *value, void *field, Definition *d, const char **reason) {
        unsigned u;
        int r = parse_unsigned(value, &u);
        if (r < 0 || u == 0) {
                *reason = "expected a positive integer";
                return r < 0 ? r : -ERANGE;
        }
        *(unsigned *) field = u;
        return 0;
}

/* A size in [min, max] (max 0: unbounded); why is the reason given otherwise. */
static int conf_size_range(const char *value, void *field, uint64_t min, uint64_t max, const char *why,
                           const char **reason) {
        uint64_t u;
        int r = parse_size(value, &u);
        if (r < 0 || u < min || (max > 0 && u > max)) {
                *reason = why;
                return r < 0 ? r : -ERANGE;
        }
        *(uint64_t *) field = u;
        return 0;
}

static int conf_size_or_zero(const char *value, void *field, Definition *d, const char **reason) {
        return conf_size_range(value, field, 0, 0, "expected a size (K, M, G suffixes), 0 for no limit",
                               reason);
}

static int conf_header_bytes(const char *value, void *field, Definition *d, const char **reason) {
        return conf_size_range(value, field, 1024, 1024 * 1024, "expected a size between 1K and 1M", reason);
}

static int conf_size(const char *value, void *field, Definition *d, const char **reason) {
        return conf_size_range(value, field, 1024, 64 * 1024 * 1024, "expected a size between 1K and 64M",
                               reason);
}

static int conf_log_level(const char *value, void *field, Definition *d, const char **reason) {
        int l = log_parse_level(value);
        if (l < 0) {
                *reason = "expected debug, info, notice, warning or err";
                return l;
        }
        *(int *) field = l;
        return 0;
}

static int conf_address(const char *value, void *field, Definition *d, const char **reason,
                        uint16_t default_port) {
        SocketAddress a;
        int r = socket_address_parse(value, default_port, &a);
        if (r < 0) {
                *reason = "expected a numeric IP address, optionally with :PORT";
                return r;
        }
        *(SocketAddress *) field = a;
        return 0;
}
static int conf_control_listen(const char *v, void *f, Definition *d, const char **reason) {
        return conf_address(v, f, d, reason, DEFAULT_CONTROL_PORT);
}
static int conf_http_listen(const char *v, void *f, Definition *d, const char **reason) {
        return conf_address(v, f, d, reason, DEFAULT_HTTP_PORT);
}
static int conf_https_listen(const char *v, void *f, Definition *d, const char **reason) {
        if (!*v) {
                *(SocketAddress *) f = (SocketAddress) {};
                return 0;
        }
        return conf_address(v, f, d, reason, DEFAULT_HTTPS_PORT);
}
/* MetricsListen=ADDR:PORT; no default port (9123 is only a suggestion), an empty value: off. */
static int conf_metrics_listen(const char *v, void *f, Definition *d, const char **reason) {
        if (!*v) {
                *(SocketAddress *) f = (SocketAddress) {};
                return 0;
        }
        return conf_address(v, f, d, reason, 9123);
}
static int conf_fileserver_listen(const char *v, void *f, Definition *d, const char **reason) {
        return conf_address(v, f, d, reason, DEFAULT_FILESERVER_PORT);
}
static int conf_data_listen(const char *v, void *f, Definition *d, const char **reason) {
        /* An address only: the ports come from the clients. */
        if (strchr(v, ']') ? strstr(v, "]:") != NULL : (strchr(v, ':') && strchr(v, ':') == strrchr(v, ':'))) {
                *reason = "expected an address without a port";
                return -EINVAL;
        }
        return conf_address(v, f, d, reason, 1);
}

/* Splits a list value on whitespace (and commas), honouring "..." and '...' quoting. */
static int split_words(const char *value, char ***ret, size_t *ret_n) {
        _cleanup_strv_free_ char **l = NULL;
        size_t n = 0;
        const char *p = value;

        for (;;) {
                char *w;
                size_t k;

                p += strspn(p, " \t,");
                if (!*p)
                        break;
                if (*p == '"' || *p == '\'') {
                        const char *e = strchr(p + 1, *p);
                        if (!e)
                                return -EBADMSG;
                        k = e - p - 1;
                        w = strndup(p + 1, k);
                        p = e + 1;
                } else {
                        k = strcspn(p, " \t,");
                        w = strndup(p, k);
                        p += k;
                }
                if (!w)
                        return -ENOMEM;
                if (strv_push(&l, &n, w) < 0)
                        return -ENOMEM;
        }
        *ret = TAKE_PTR(l);
        *ret_n = n;
        return 0;
}

/* A list key: an empty assignment empties it, otherwise each word of the value is one item. */
typedef struct ConfList {
        void (*reset)(Definition *d);
        int (*item)(Definition *d, char **word, const char **reason); /* may take *word */
        const char *unbalanced; /* the reason given for unbalanced quotes; NULL: none */
} ConfList;

static int conf_list(const ConfList *l, const char *value, Definition *d, const char **reason) {
        char **words = NULL;
        size_t nw = 0;
        int r;

        if (!*value) {
                l->reset(d);
                return 0;
        }
        r = split_words(value, &words, &nw);
        if (r < 0) {
                if (l->unbalanced)
                        *reason = l->unbalanced;
                return r;
        }
        for (size_t i = 0; i < nw && r >= 0; i++)
                r = l->item(d, &words[i], reason);
        /* By count: the items taken are NULL now, and strv_free() would stop at the first. */
        for (size_t i = 0; i < nw; i++)
                free(words[i]);
        free(words);
        return r < 0 ? r : 0;
}

static void san_reset(Definition *d) {
        d->auto_tls_san = strv_free(d->auto_tls_san);
        d->n_auto_tls_san = 0;
}

static int san_item(Definition *d, char **word, const char **reason) {
        return strv_push(&d->auto_tls_san, &d->n_auto_tls_san, TAKE_PTR(*word));
}

static const ConfList san_list = { san_reset, san_item, "unbalanced quotes" };

static void port_maps_reset(PortMap **ports, size_t *n) {
        for (size_t i = 0; i < *n; i++)
                free((*ports)[i].host);
        *ports = mfree(*ports);
        *n = 0;
}

static void ports_reset(Definition *d) {
        port_maps_reset(&d->ports, &d->n_ports);
}

static void udp_ports_reset(Definition *d) {
        port_maps_reset(&d->udp_ports, &d->n_udp_ports);
}

static bool address_is_numeric(const char *s) {
        unsigned char buf[sizeof(struct in6_addr)];

        return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

/* PORT, PUBLIC:UPSTREAM, or PUBLIC:HOST:UPSTREAM (HOST a name, an IPv4 address or [IPv6]), into
 * Ports= or UDPPorts=. */
static int port_map_item(PortMap **ports, size_t *n_ports, char **word, const char **reason) {
        char *first = strchr(*word, ':'), *last = strrchr(*word, ':');
        _cleanup_free_ char *host = NULL;
        PortMap m = {}, *t;

        *reason = "expected PORT, PUBLIC:UPSTREAM or PUBLIC:HOST:UPSTREAM, ports 1-65535";
        if (first)
                *first = 0;
        if (first && last != first) {
                /* The host is what lies between the first and the last colon. */
                char *h = first + 1;
                size_t n = (size_t) (last - h);
                bool bracketed = n >= 2 && h[0] == '[' && h[n - 1] == ']';

                if (bracketed) {
                        h++;
                        n -= 2;
                }
                host = strndup(h, n);
                if (!host)
                        return -ENOMEM;
                /* An IPv6 address only in brackets: 80:::1:90 could be read more than one way. */
                if ((!hostname_is_valid(host) && !address_is_numeric(host)) || (!bracketed && strchr(host, ':')) ||
                    (bracketed && !strchr(host, ':'))) {
                        *reason = "the host of PUBLIC:HOST:UPSTREAM is not a host name or an address "
                                  "(IPv6 in brackets)";
                        return -EINVAL;
                }
        }
        if (parse_port(*word, &m.public_port) < 0 ||
            parse_port(last ? last + 1 : *word, &m.upstream_port) < 0)
                return -EINVAL;
        for (size_t j = 0; j < *n_ports; j++)
                if ((*ports)[j].public_port == m.public_port) {
                        *reason = "public port listed twice";
                        return -EEXIST;
                }
        t = realloc(*ports, sizeof(PortMap) * (*n_ports + 1));
        if (!t)
                return -ENOMEM;
        *ports = t;
        m.host = TAKE_PTR(host);
        (*ports)[(*n_ports)++] = m;
        *reason = NULL;
        return 0;
}

static int ports_item(Definition *d, char **word, const char **reason) {
        return port_map_item(&d->ports, &d->n_ports, word, reason);
}

static int udp_ports_item(Definition *d, char **word, const char **reason) {
        return port_map_item(&d->udp_ports, &d->n_udp_ports, word, reason);
}

static const ConfList ports_list = { ports_reset, ports_item, NULL };
static const ConfList udp_ports_list = { udp_ports_reset, udp_ports_item, NULL };

/* Splits s at ':' outside brackets into at most max parts (in place); the count. */
static size_t split_colons(char *s, char **parts, size_t max) {
        size_t n = 0;
        int depth = 0;

        parts[n++] = s;
        for (char *p = s; *p; p++) {
                if (*p == '[')
                        depth++;
                else if (*p == ']')
                        depth--;
                else if (*p == ':' && depth == 0) {
                        if (n == max)
                                return max + 1;
                        *p = 0;
                        parts[n++] = p + 1;
                }
        }
        return n;
}

/* A host as written in an item: a name, an IPv4 address, or [IPv6] (brackets removed). */
static int item_host(const char *s, char **ret) {
        size_t n = strlen(s);
        bool bracketed = n >= 2 && s[0] == '[' && s[n - 1] == ']';
        _cleanup_free_ char *h = bracketed ? strndup(s + 1, n - 2) : strdup(s);

        if (!h)
                return -ENOMEM;
        if (bracketed != !!strchr(h, ':') || (!hostname_is_valid(h) && !address_is_numeric(h)))
                return -EINVAL;
        *ret = TAKE_PTR(h);
        return 0;
}

static void local_forward_reset(Definition *d) {
        for (size_t i = 0; i < d->n_local_forwards; i++)
                free(d->local_forwards[i].host);
        d->local_forwards = mfree(d->local_forwards);
        d->n_local_forwards = 0;
}

/* [LISTEN:]PORT:HOST:HOSTPORT; LISTEN defaults to 127.0.0.1 (never every address unasked). */
static int local_forward_item(Definition *d, char **word, const char **reason) {
        _cleanup_free_ char *listen = NULL;
        char *parts[4];
        LocalForward f = {}, *t;
        uint16_t lport;
        size_t n;
        int r;

        *reason = "expected [LISTEN:]PORT:HOST:PORT (IPv6 in brackets), e.g. 5432:db.internal:5432";
        n = split_colons(*word, parts, 4);
        if (n < 3 || n > 4)
                return -EINVAL;
        if (parse_port(parts[n - 3], &lport) < 0 || parse_port(parts[n - 1], &f.port) < 0)
                return -EINVAL;
        if (asprintf(&listen, "%s:%u", n == 4 ? parts[0] : "127.0.0.1", lport) < 0)
                return -ENOMEM;
        if (socket_address_parse(listen, 0, &f.listen) < 0) {
                *reason = "the listening address of LocalForward= must be numeric (IPv6 in brackets)";
                return -EINVAL;
        }
        r = item_host(parts[n - 2], &f.host);
        if (r < 0)
                return r;
        for (size_t i = 0; i < d->n_local_forwards; i++)
                if (socket_address_equal(&d->local_forwards[i].listen, &f.listen)) {
                        free(f.host);
                        *reason = "the same listening address twice";
                        return -EEXIST;
                }
        t = realloc(d->local_forwards, sizeof(LocalForward) * (d->n_local_forwards + 1));
        if (!t) {
                free(f.host);
                return -ENOMEM;
        }
        d->local_forwards = t;
        d->local_forwards[d->n_local_forwards++] = f;
        *reason = NULL;
        return 0;
}

static const ConfList local_forward_list = { local_forward_reset, local_forward_item, NULL };

static void allow_forward_reset(Definition *d) {
        for (size_t i = 0; i < d->n_allow_forward_to; i++)
                free(d->allow_forward_to[i].host);
        d->allow_forward_to = mfree(d->allow_forward_to);
        d->n_allow_forward_to = 0;
}

/* HOST:PORT, PREFIX, PREFIX:PORT or [PREFIX]:PORT. */
static int allow_forward_item(Definition *d, char **word, const char **reason) {
        const char *why;
        ForwardRule f = {}, *t;
        char *w = *word, *colon;

        *reason = "expected HOST:PORT, an address prefix, or PREFIX:PORT ([PREFIX]:PORT for IPv6)";
        if (address_prefix_parse(w, &f.prefix, &why) < 0) {
                /* Not a bare prefix: something with :PORT. */
                if (w[0] == '[') {
                        char *e = strstr(w, "]:");
                        if (!e)
                                return -EINVAL;
                        *e = 0;
                        colon = e + 1;
                        w++;
                } else {
                        colon = strrchr(w, ':');
                        if (!colon || strchr(w, ':') != colon)
                                return -EINVAL;
                        *colon = 0;
                }
                if (parse_port(colon + 1, &f.port) < 0)
                        return -EINVAL;
                if (address_prefix_parse(w, &f.prefix, &why) < 0) {
                        if (!hostname_is_valid(w))
                                return -EINVAL;
                        f.host = strdup(w);
                        if (!f.host)
                                return -ENOMEM;
                }
        }
        t = realloc(d->allow_forward_to, sizeof(ForwardRule) * (d->n_allow_forward_to + 1));
        if (!t) {
                free(f.host);
                return -ENOMEM;
        }
        d->allow_forward_to = t;
        d->allow_forward_to[d->n_allow_forward_to++] = f;
        *reason = NULL;
        return 0;
}

static const ConfList allow_forward_list = { allow_forward_reset, allow_forward_item, NULL };

static void allow_ports_reset(Definition *d) {
        d->allow_ports = mfree(d->allow_ports);
        d->n_allow_ports = 0;
}

static void allow_udp_ports_reset(Definition *d) {
        d->allow_udp_ports = mfree(d->allow_udp_ports);
        d->n_allow_udp_ports = 0;
}

/* PORT or LOW-HIGH, stored as the pair [LOW, HIGH] in *ranges. */
static int port_range_item(uint16_t **ranges, size_t *n, char **word, const char **reason) {
        char *dash = strchr(*word, '-');
        uint16_t lo, hi, *t;

        if (dash)
                *dash = 0;
        if (parse_port(*word, &lo) < 0 || parse_port(dash ? dash + 1 : *word, &hi) < 0 || hi < lo) {
                *reason = "expected PORT or LOW-HIGH";
                return -EINVAL;
        }
        t = realloc(*ranges, sizeof(uint16_t) * (*n + 2));
        if (!t)
                return -ENOMEM;
        *ranges = t;
        (*ranges)[(*n)++] = lo;
        (*ranges)[(*n)++] = hi;
        return 0;
}

static int allow_ports_item(Definition *d, char **word, const char **reason) {
        return port_range_item(&d->allow_ports, &d->n_allow_ports, word, reason);
}

static int allow_udp_ports_item(Definition *d, char **word, const char **reason) {
        return port_range_item(&d->allow_udp_ports, &d->n_allow_udp_ports, word, reason);
}

static const ConfList allow_ports_list = { allow_ports_reset, allow_ports_item, NULL };
static const ConfList allow_udp_ports_list = { allow_udp_ports_reset, allow_udp_ports_item, NULL };

static void acme_domain_reset(Definition *d) {
        d->acme_domains = strv_free(d->acme_domains);
        d->n_acme_domains = 0;
}

static int acme_domain_item(Definition *d, char **word, const char **reason) {
        char *w = *word;

        if (w[0] == '*') {
                *reason = "wildcard names need the DNS-01 challenge; inletsd answers HTTP-01 only";
                return -EINVAL;
        }
        if (!dns_name_is_valid(w)) {
                *reason = "expected DNS names such as www.example.com (labels of 1 to 63 letters, digits and inner "
                          "hyphens; no address)";
                return -EINVAL;
        }
        for (char *p = w; *p; p++)
                *p = ascii_tolower(*p);
        for (size_t i = 0; i < d->n_acme_domains; i++)
                if (streq(d->acme_domains[i], w))
                        return 0; /* named twice: once is enough */
        return strv_push(&d->acme_domains, &d->n_acme_domains, TAKE_PTR(*word));
}

static const ConfList acme_domain_list = { acme_domain_reset, acme_domain_item, "unbalanced quotes" };

static int conf_upstream(const char *value, void *field, Definition *d, const char **reason) {
        char *v;
        if (!*value) {
                d->upstreams = strv_free(d->upstreams);
                d->n_upstreams = 0;
                return 0;
        }
        if (strpbrk(value, " \t")) {
                *reason = "one upstream per line";
                return -EINVAL;
        }
        if (strstr(value, "://")) {
                HttpUpstream u;
                if (http_upstream_parse(value, &u) < 0) {
                        *reason = "expected [HOST=]http://HOST[:PORT][/PATH] or https://...";
                        return -EINVAL;
                }
                http_upstream_done(&u);
        }
        v = strdup(value);
        if (!v)
                return -ENOMEM;
        return strv_push(&d->upstreams, &d->n_upstreams, v);
}

static int conf_fingerprint(const char *value, void *field, Definition *d, const char **reason) {
        if (!*value) {
                d->has_fingerprint = false;
                return 0;
        }
        if (strncasecmp(value, "sha256:", 7) != 0 || unhexmem(value + 7, d->server_fingerprint, 32) < 0) {
                *reason = "expected sha256: followed by 64 hex digits";
                return -EINVAL;
        }
        d->has_fingerprint = true;
        return 0;
}

static int conf_url(const char *value, void *field, Definition *d, const char **reason) {
        TunnelURL u;
        int r = tunnel_url_parse(value, &u);
        if (r < 0) {
                *reason = "expected wss://HOST[:PORT][/PATH] (or ws:// behind a TLS proxy)";
                return r;
        }
        tunnel_url_done(&u);
        return conf_string(value, field, d, reason);
}

static int conf_proxy(const char *value, void *field, Definition *d, const char **reason) {
        _cleanup_(proxy_url_done) ProxyURL u = {};
        int r;

        if (*value && !streq(value, "none")) {
                r = proxy_url_parse(value, &u, reason);
                if (r < 0)
                        return r;
        }
        return conf_secret(value, field, d, reason);
}

static int conf_client_id(const char *value, void *field, Definition *d, const char **reason) {
        if (*value && !string_is_safe_id(value, 64)) {
                *reason = "up to 64 characters of A-Z a-z 0-9 . _ @ -";
                return -EINVAL;
        }
        return conf_string(value, field, d, reason);
}

static int conf_acme_email(const char *value, void *field, Definition *d, const char **reason) {
        const char *at = strchr(value, '@');
        if (!at || at == value || !at[1] || strpbrk(value, " \t<>\"\\,;:()[]")) {
                *reason = "expected an e-mail address such as admin@example.com";
                return -EINVAL;
        }
        return conf_string(value, field, d, reason);
}

static int conf_acme_directory(const char *value, void *field, Definition *d, const char **reason) {
        if (strcaseeq(value, "production") || strcaseeq(value, "letsencrypt"))
                value = ACME_DIRECTORY_PRODUCTION;
        else if (strcaseeq(value, "staging"))
                value = ACME_DIRECTORY_STAGING;
        else if (strncasecmp(value, "https://", 8) != 0 || !value[8] || strpbrk(value, " \t")) {
                *reason = "expected production, staging or an https:// ACME directory URL";
                return -EINVAL;
        }
        return conf_string(value, field, d, reason);
}

/* ProxyProtocol=no|v1|v2 [PORT...]: without ports for every port of the tunnel, with ports for
 * those public ports only (a later line for the same port wins); empty: back to none at all. */
static int conf_proxy_protocol(const char *value, void *field, Definition *d, const char **reason) {
        _cleanup_strv_free_ char **words = NULL;
        ProxyProtocol v;
        size_t nw = 0;
        int r;

        if (!*value) {
                d->proxy_protocol = _PROXY_PROTOCOL_INVALID;
                d->proxy_protocol_ports = mfree(d->proxy_protocol_ports);
                d->n_proxy_protocol_ports = 0;
                return 0;
        }
        r = split_words(value, &words, &nw);
        if (r < 0)
                return r;
        v = nw > 0 ? proxy_protocol_from_string(words[0]) : _PROXY_PROTOCOL_INVALID;
        if (v < 0) {
                *reason = "expected no, v1 or v2, optionally followed by public ports";
                return -EINVAL;
        }
        if (nw == 1) {
                d->proxy_protocol = v;
                return 0;
        }
        for (size_t i = 1; i < nw; i++) {
                ProxyProtocolPort *t;
                uint16_t port;
                size_t j;

                if (parse_port(words[i], &port) < 0) {
                        *reason = "expected public ports (the first number of a Ports= item) after the "
                                  "version";
                        return -EINVAL;
                }
                for (j = 0; j < d->n_proxy_protocol_ports; j++)
                        if (d->proxy_protocol_ports[j].public_port == port)
                                break;
                if (j == d->n_proxy_protocol_ports) {
                        t = realloc(d->proxy_protocol_ports, sizeof(*t) * (j + 1));
                        if (!t)
                                return -ENOMEM;
                        d->proxy_protocol_ports = t;
                        d->n_proxy_protocol_ports++;
                }
                d->proxy_protocol_ports[j] = (ProxyProtocolPort) { .public_port = port, .version = v };
        }
        return 0;
}

/* AllowFrom=, DenyFrom=, ControlAllowFrom=: the reason names the item, for lists of hundreds. */
static int conf_access(const char *value, AccessList *l, bool allow, bool scoped, const char **reason) {
        static _Thread_local char buf[512];
        _cleanup_free_ char *item = NULL;
        int r = access_list_parse_full(l, value, allow, scoped, reason, &item);

        if (r < 0 && r != -ENOMEM && item && *reason && !streq(item, value)) {
                snprintf(buf, sizeof(buf), "'%s': %s", item, *reason);
                *reason = buf;
        }
        return r;
}
static int conf_allow_from(const char *v, void *f, Definition *d, const char **reason) {
        d->access_in_server = true;
        return conf_access(v, f, true, true, reason);
}
static int conf_deny_from(const char *v, void *f, Definition *d, const char **reason) {
        d->access_in_server = true;
        return conf_access(v, f, false, true, reason);
}
static int conf_client_allow_from(const char *v, void *f, Definition *d, const char **reason) {
        d->access_in_client = true;
        return conf_access(v, f, true, true, reason);
}
static int conf_client_deny_from(const char *v, void *f, Definition *d, const char **reason) {
        d->access_in_client = true;
        return conf_access(v, f, false, true, reason);
}
/* ControlAllowFrom=, AcceptProxyProtocol=, ControlAcceptProxyProtocol=: addresses and prefixes,
 * no scopes. */
static int conf_source_list(const char *v, void *f, Definition *d, const char **reason) {
        return conf_access(v, f, true, false, reason);
}

/* The HTTP rules of a tunnel client (http-rules.h). */
static int conf_basic_auth_file(const char *v, void *f, Definition *d, const char **reason) {
        return http_rules_add_credential_file(&d->http_rules, false, v, reason);
}
static int conf_bearer_token_file(const char *v, void *f, Definition *d, const char **reason) {
        return http_rules_add_credential_file(&d->http_rules, true, v, reason);
}
static int conf_request_header(const char *v, void *f, Definition *d, const char **reason) {
        return http_rules_add_header(&d->http_rules, false, v, reason);
}
static int conf_response_header(const char *v, void *f, Definition *d, const char **reason) {
        return http_rules_add_header(&d->http_rules, true, v, reason);
}
static int conf_rate_limit(const char *v, void *f, Definition *d, const char **reason) {
        return http_rules_add_rate(&d->http_rules, v, reason);
}

#define F(x) offsetof(Definition, x)
static const struct ConfItem {
        const char *section, *key;
        ConfParser parse;
        size_t offset;
        bool secret;
        const ConfList *list; /* instead of parse: a list key */
} conf_items[] = {
        { "Tunnel", "Role", conf_role, F(role) },
        { "Tunnel", "Mode", conf_mode, F(mode) },
        { "Tunnel", "Token", conf_secret, F(token), true },
        { "Tunnel", "TokenFile", conf_string, F(token_file) },
        { "Tunnel", "KeepaliveSec", conf_positive_sec, F(keepalive_usec) },
        { "Tunnel", "HandshakeTimeoutSec", conf_positive_sec, F(handshake_timeout_usec) },
        { "Tunnel", "ResumeSec", conf_resume_sec, F(resume_usec) },
        { "Tunnel", "LogLevel", conf_log_level, F(log_level) },
        { "Tunnel", "MaxHeaderBytes", conf_header_bytes, F(max_header_bytes) },
        { "Tunnel", "MaxHeaders", conf_unsigned, F(max_headers) },
        { "Tunnel", "IdleTimeoutSec", conf_positive_sec, F(idle_timeout_usec) },
        { "Tunnel", "MetricsListen", conf_metrics_listen, F(metrics_listen) },
        { "Tunnel", "UDPIdleSec", conf_udp_idle_sec, F(udp_idle_usec) },
        { "Server", "ControlListen", conf_control_listen, F(control_listen) },
        { "Server", "DataListen", conf_data_listen, F(data_listen) },
        { "Server", "HTTPListen", conf_http_listen, F(http_listen) },
        { "Server", "HTTPSListen", conf_https_listen, F(https_listen) },
        { "Server", "HTTPSCertificateFile", conf_string, F(https_certificate_file) },
        { "Server", "HTTPSKeyFile", conf_string, F(https_key_file) },
        { "Server", "MaxBodyBytes", conf_size_or_zero, F(max_body_bytes) },
        { "Server", "MaxConnections", conf_unsigned, F(max_connections) },
        { "Server", "ResponseTimeoutSec", conf_positive_sec, F(response_timeout_usec) },
        { "Server", "TLS", conf_bool, F(tls) },
        { "Server", "AutoTLS", conf_bool, F(auto_tls) },
        { "Server", "AutoTLSSAN", .list = &san_list },
        { "Server", "CertificateFile", conf_string, F(certificate_file) },
        { "Server", "KeyFile", conf_string, F(key_file) },
        { "Server", "StateDirectory", conf_string, F(state_directory) },
        { "Server", "ACMEDomain", .list = &acme_domain_list },
        { "Server", "ACMEEmail", conf_acme_email, F(acme_email) },
        { "Server", "ACMEDirectory", conf_acme_directory, F(acme_directory) },
        { "Server", "ACMECAFile", conf_string, F(acme_ca_file) },
        { "Server", "AllowPorts", .list = &allow_ports_list },
        { "Server", "AllowUDPPorts", .list = &allow_udp_ports_list },
        { "Server", "AllowForwardTo", .list = &allow_forward_list },
        { "Server", "AllowFrom", conf_allow_from, F(access) },
        { "Server", "DenyFrom", conf_deny_from, F(access) },
        { "Server", "ControlAllowFrom", conf_source_list, F(control_access) },
        { "Server", "AcceptProxyProtocol", conf_source_list, F(accept_proxy) },
        { "Server", "ControlAcceptProxyProtocol", conf_source_list, F(control_accept_proxy) },
        { "Server", "MaxClients", conf_unsigned, F(max_clients) },
        { "Server", "MaxStreamsPerClient", conf_unsigned, F(max_streams) },
        { "Server", "MaxFrameSize", conf_size, F(max_frame_size) },
        { "Client", "URL", conf_url, F(url) },
        { "Client", "CAFile", conf_string, F(ca_file) },
        { "Client", "UpstreamCAFile", conf_string, F(upstream_ca_file) },
        { "Client", "ServerFingerprint", conf_fingerprint, F(server_fingerprint) },
        { "Client", "Upstream", conf_upstream, F(upstreams) },
        { "Client", "Ports", .list = &ports_list },
        { "Client", "UDPPorts", .list = &udp_ports_list },
        { "Client", "LocalForward", .list = &local_forward_list },
        { "Client", "ReconnectMaxDelaySec", conf_positive_sec, F(reconnect_max_delay_usec) },
        { "Client", "ClientID", conf_client_id, F(client_id) },
        { "Client", "ProxyProtocol", conf_proxy_protocol, F(proxy_protocol) },
        /* May hold the proxy's password: errors do not quote it. */
        { "Client", "Proxy", conf_proxy, F(proxy), true },
        { "Client", "ProxyPasswordFile", conf_string, F(proxy_password_file) },
        /* The service owner's own lists: sent to the exit server, which applies them too. */
        { "Client", "AllowFrom", conf_client_allow_from, F(access) },
        { "Client", "DenyFrom", conf_client_deny_from, F(access) },
        { "Client", "BasicAuthFile", conf_basic_auth_file, F(http_rules) },
        { "Client", "BearerTokenFile", conf_bearer_token_file, F(http_rules) },
        { "Client", "RateLimit", conf_rate_limit, F(http_rules) },
        { "Client", "RequestHeader", conf_request_header, F(http_rules) },
        { "Client", "ResponseHeader", conf_response_header, F(http_rules) },
        { "FileServer", "Listen", conf_fileserver_listen, F(listen) },
        { "FileServer", "Webroot", conf_string, F(webroot) },
        { "FileServer", "AllowBrowsing", conf_bool, F(allow_browsing) },
        { "FileServer", "BasicAuth", conf_bool, F(basic_auth) },
        { "FileServer", "AllowHidden", conf_bool, F(allow_hidden) },
};
#undef F

static const struct ConfItem *conf_item_find(const char *section, const char *key) {
        for (size_t i = 0; i < ELEMENTSOF(conf_items); i++)
                if (streq(conf_items[i].section, section) && (!key || streq(conf_items[i].key, key)))
                        return &conf_items[i];
        return NULL;
}

const char *conf_key_at(size_t i, const char **ret_section) {
        assert(ret_section);
        if (i >= ELEMENTSOF(conf_items))
                return NULL;
        *ret_section = conf_items[i].section;
        return conf_items[i].key;
}

static int on_section(const char *path, unsigned line, const char *section, void *userdata) {
        if (conf_item_find(section, NULL))
                return 1;
        log_warning("%s:%u: Unknown section [%s], ignoring its keys.", path, line, section);
        return 0;
}

static int on_assignment(const char *path, unsigned line, const char *section, const char *key, char *value,
                         void *userdata, char **ret_error) {
        Definition *d = userdata;
        const struct ConfItem *item = conf_item_find(section, key);
        const char *reason = NULL;
        int r;

        if (!item) {
                log_warning("%s:%u: Unknown key %s= in [%s], ignoring.", path, line, key, section);
                return 0;
        }
        r = item->list ? conf_list(item->list, value, d, &reason)
                       : item->parse(value, (uint8_t *) d + item->offset, d, &reason);
        if (r == -ENOMEM)
                return r;
        if (r < 0) {
                if (item->secret)
                        return errorf(ret_error, r, "%s:%u: Invalid %s= value%s%s", path, line, key,
                                      reason ? ": " : "", reason ?: "");
                return errorf(ret_error, r, "%s:%u: Invalid %s= value '%s'%s%s", path, line, key,
                                 value, reason ? ": " : "", reason ?: "");
        }
        if (item->secret && streq(key, "Token") && !d->token_file)
                /* Don't let an inline token and a world-readable file pass unnoticed. */
                log_debug("%s:%u: token given inline.", path, line);
        return 0;
}

int definition_parse_buffer(Definition *d, const char *path, const char *data, size_t size,
                            char **ret_error) {
        static const IniHandler handler = {
                .section = on_section,
                .assignment = on_assignment,
        };

        assert(d);
        assert(path);
        return ini_parse(path, data, size, &handler, d, ret_error);
}
