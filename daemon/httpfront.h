// SPDX-License-Identifier: LGPL-2.1-or-later
/* HTTP mode, exit server side: the public HTTP (or HTTPS) port. Each request is routed by its
 * Host to a tunnel client's session and travels there as an HTTP/2 request stream; the
 * response comes back the same way and goes out as HTTP/1.1. */
#pragma once

#include "histogram.h"
#include "macro.h"
#include "manager.h"
#include "tls.h"

typedef struct HttpFront HttpFront;

/* The session that serves host (lower case, no port) to peer, or NULL: with *ret_refused when
 * one serves it but its client's own lists refuse peer (counted and logged by the callee).
 * *ret_exact: a client names host itself (not one that serves any host). */
typedef Mux *(*HttpRouteFunc)(const char *host, const SocketAddress *peer, bool *ret_refused, bool *ret_exact,
                              void *userdata);

/* ---- request counts for the metrics (one set per process: it outlives the fronts of a
 * reload) ---- */

#define HTTP_STATS_HOSTS 64        /* host labels; beyond them requests count under "*" */
#define HTTP_STATS_METHODS 8       /* GET HEAD POST PUT PATCH DELETE OPTIONS other */

typedef struct HttpStatsHost {
        char host[256];            /* "-": not routed (our own answer), "*": a client for any host */
        uint64_t n[HTTP_STATS_METHODS][5]; /* by status class 1xx..5xx */
        uint64_t bytes_in, bytes_out;     /* of request streams that ended, as D-Bus BytesIn/Out */
        uint64_t active;                  /* request streams open now */
} HttpStatsHost;

typedef struct HttpStats {
        HttpStatsHost hosts[HTTP_STATS_HOSTS];
        size_t n_hosts;
        Histogram response;        /* from the request head to the response head */
} HttpStats;

extern const char *const http_stats_methods[HTTP_STATS_METHODS];
const HttpStats *http_stats(void);

/* One request on its way: begun when its head is in, ended by the first response head. */
typedef struct HttpReqStat {
        uint64_t started;          /* 0: not counting */
        uint8_t method, slot;
} HttpReqStat;
void http_req_stat_begin(HttpReqStat *r, const char *method);
void http_req_stat_end(HttpReqStat *r, unsigned status);
/* The request's stream through the tunnel opened; and ended (closed, or dropped by us): its
 * bytes count for its host. Called once each per stream. */
void http_req_stat_open(const HttpReqStat *r);
void http_req_stat_bytes(const HttpReqStat *r, MuxStream *s);

/* Takes ownership of listen_fd. creds NULL: plain HTTP. */
int http_front_new(Manager *m, int listen_fd, gnutls_certificate_credentials_t creds, HttpRouteFunc route,
                   void *userdata, HttpFront **ret);
HttpFront *http_front_free(HttpFront *f);
DEFINE_TRIVIAL_CLEANUP_FUNC(HttpFront *, http_front_free);
/* Stops accepting; requests in progress carry on. */
void http_front_stop(HttpFront *f);
/* Future connections use these credentials (a reload replaced the certificate). */
void http_front_set_credentials(HttpFront *f, gnutls_certificate_credentials_t creds);
uint64_t http_front_requests(HttpFront *f);
/* Adds the requests AllowFrom=/DenyFrom= refused and the connections AcceptProxyProtocol=
 * closed to c (nothing for NULL). */
void http_front_add_refused(HttpFront *f, RefusedCounters *c);
/* Plain HTTP next to an ACME certificate: answer HTTP-01 challenges with token.thumbprint and
 * redirect every other request to HTTPS on https_port. */
void http_front_set_acme(HttpFront *f, const char *thumbprint, uint16_t https_port);

/* ---- shared by the HTTP/1.1 side (h1front.c) and the HTTP/2 side (h2front.c) ---- */

const Definition *http_front_def(HttpFront *f);
sd_event *http_front_event(HttpFront *f);
void http_front_count_request(HttpFront *f);
/* An HTTP/2 connection opened or ended: it counts under MaxConnections= while it lives. */
void http_front_count_conn(HttpFront *f, bool open);
/* The session for a Host value asked for by peer; NULL with *ret_status 400 (malformed), 403
 * (AllowFrom=/DenyFrom= refuse peer for this host: counted and logged here; or the serving
 * client's own lists do: counted by the route callback) or 502 (nobody serves it). host gets
 * the normalized name. */
Mux *http_front_route(HttpFront *f, const char *authority, const SocketAddress *peer, unsigned *ret_status,
                      char host[static 256], HttpReqStat *stat);
/* Copies the end-to-end fields of h into t and adds X-Forwarded-For/-Proto/-Host and
 * Forwarded (t->authority set). The X-Forwarded-For and Forwarded that came with the request
 * are kept in front of ours only when keep_forwarded (a trusted load balancer sent it: see
 * AcceptProxyProtocol=); from anyone else they are dropped, so the upstream never takes a
 * visitor's claim for an address we saw. x-inlets-peer and x-inlets-local (peer and local,
 * "ADDR:PORT" as socket_address_format() writes them, for the tunnel client's PROXY header:
 * docs/protocol.md) are added, and any x-inlets-* field the request came with is dropped. */
int http_forward_fields(HttpHead *t, const HttpHead *h, const char *peer, const char *peer_ip, const char *local,
                        const char *scheme, bool keep_forwarded);

typedef struct H2Conn H2Conn;
/* Serves an HTTP/2 connection (ALPN chose h2); takes conn, links into *list. */
int h2_conn_start(HttpFront *f, H2Conn **list, TlsConn *conn, const SocketAddress *peer_addr,
                  const char *peer, const char *peer_ip, const char *local, bool via_proxy);
void h2_conns_free(H2Conn **list);
