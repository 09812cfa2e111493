// SPDX-License-Identifier: LGPL-2.1-or-later
/* The HttpFront object, shared by the files of the public HTTP port: httpfront.c (the
 * listener, routing, forwarding) and h1front.c (HTTP/1.x connections). */
#pragma once

#include "httpfront.h"
#include "proxy-accept.h"
#include "ratelimit.h"
#include "socket-util.h"

typedef struct HttpConn HttpConn;

struct HttpFront {
        Manager *manager;
        int fd;
        gnutls_certificate_credentials_t creds;
        sd_event_source *io;
        HttpRouteFunc route;
        void *userdata;
        HttpConn *conns;
        unsigned n_conns;       /* HTTP/1.x connections and HTTP/2 ones (h2front.c) */
        H2Conn *h2conns;
        uint64_t requests;
        uint64_t refused;       /* requests AllowFrom=/DenyFrom= turned away */
        uint64_t refused_proxy; /* connections AcceptProxyProtocol= closed (no valid header) */
        ProxyGate gate;
        RateLimit refused_log;
        char *acme_thumbprint;  /* plain HTTP with ACME: answer challenges, redirect the rest */
        uint16_t https_port;
};

/* The ProxyGate's callback (userdata: the HttpFront): serves cfd over HTTP/1.x, or hands it to
 * h2front.c when ALPN chooses h2. via_proxy: from a trusted load balancer, whose forwarded
 * fields are kept. < 0 only when memory ran out, to end the batch. */
int h1_conn_accept(int cfd, const SocketAddress *peer, bool via_proxy, void *userdata);
void h1_conns_free(HttpConn **list);

/* host: the Host value without its port, lower case, checked (-EINVAL if malformed). */
int http_front_normalize_host(const char *authority, char *ret, size_t size);
