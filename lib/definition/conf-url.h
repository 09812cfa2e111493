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

int tunnel_url_parse(const char *s, TunnelURL *ret);
void tunnel_url_done(TunnelURL *u);
