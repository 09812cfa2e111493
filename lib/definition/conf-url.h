// SPDX-License-Identifier: LGPL-2.1-or-later
/* The URLs a definition names: the tunnel's ws(s):// URL= and HTTP mode's http(s):// Upstream=
 * lines, both split by one parser (conf-url.c). */
#pragma once

#include <stdbool.h>
#include <stdint.h>

/* A parsed wss:// or ws:// URL. */
typedef struct TunnelURL {
        bool tls;
        char *host;
        uint16_t port;
        char *path;
} TunnelURL;

/* One HTTP-mode Upstream= line: [HOST=]http(s)://HOST[:PORT][/PREFIX]. */
typedef struct HttpUpstream {
        char *match;      /* the public host name it serves (lower case); NULL: any other */
        bool tls;
        char *host;       /* to dial */
        uint16_t port;
        char *authority;  /* the Host: the upstream sees */
        char *prefix;     /* path prefix without a trailing slash; "" for none */
} HttpUpstream;

int http_upstream_parse(const char *s, HttpUpstream *ret);
void http_upstream_done(HttpUpstream *u);
/* Host name syntax for Upstream= and X-Inlets-Hosts: letters, digits, '-', '.'. */
bool hostname_is_valid(const char *s);
/* A fully qualified DNS name a public CA can issue for: two labels or more, each 1 to 63
 * letters, digits and inner hyphens, the last not all digits (no address), no final dot. */
bool dns_name_is_valid(const char *s);

int tunnel_url_parse(const char *s, TunnelURL *ret);
void tunnel_url_done(TunnelURL *u);

/* Proxy=, https_proxy: http://[USER[:PASSWORD]@]HOST[:PORT] (port 80 when not written), the
 * user and password %XX-decoded. */
typedef struct ProxyURL {
        char *user;       /* NULL: no credentials */
        char *password;   /* NULL: none written (ProxyPasswordFile= may give one) */
        char *host;
        uint16_t port;
} ProxyURL;

/* -EINVAL / -EPROTONOSUPPORT with *reason saying what is wrong (never quoting a password). */
int proxy_url_parse(const char *s, ProxyURL *ret, const char **reason);
void proxy_url_done(ProxyURL *u);
/* Whether no_proxy (comma- or space-separated: "*", names that match themselves and the names
 * under them, addresses and prefixes, each with an optional :PORT) exempts host:port. */
bool no_proxy_matches(const char *list, const char *host, uint16_t port);

/* The arguments of the "forward" control message (docs/protocol.md, section 6): "ID HOST:PORT",
 * ID 1 to 2^31-1 without leading zeros, HOST a name, an IPv4 address or [IPv6]; the host
 * without brackets in *ret_host. -EINVAL for anything else. */
int forward_request_parse(const char *s, uint32_t *ret_id, char **ret_host, uint16_t *ret_port);
