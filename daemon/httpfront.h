// SPDX-License-Identifier: LGPL-2.1-or-later
/* HTTP mode, exit server side: the public HTTP (or HTTPS) port. Each request is routed by its
 * Host to a tunnel client's session and travels there as an HTTP/2 request stream; the
 * response comes back the same way and goes out as HTTP/1.1. */
#pragma once

#include "manager.h"

typedef struct HttpFront HttpFront;

/* The session that serves host (lower case, no port), or NULL. */
typedef Mux *(*HttpRouteFunc)(const char *host, void *userdata);

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
