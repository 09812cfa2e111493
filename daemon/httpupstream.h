// SPDX-License-Identifier: LGPL-2.1-or-later
/* HTTP mode, tunnel client side: each request stream from the exit server goes to the
 * upstream its host maps to (Upstream=[HOST=]URL), over HTTP/1.1 with connection reuse, and
 * the upstream's response comes back as it is, minus hop-by-hop fields. */
#pragma once

#include "macro.h"
#include "manager.h"

typedef struct HttpUpstreams HttpUpstreams;

int http_upstreams_new(Manager *m, HttpUpstreams **ret);
HttpUpstreams *http_upstreams_free(HttpUpstreams *u);
DEFINE_TRIVIAL_CLEANUP_FUNC(HttpUpstreams *, http_upstreams_free);

/* Re-reads Upstream= from the manager's definition and resolves the names (blocking; call it
 * when no request waits). Idle connections to upstreams that changed are closed. */
int http_upstreams_refresh(HttpUpstreams *u);

/* The host names to offer the exit server, comma-separated; "*" for a default upstream. */
char *http_upstreams_offer(const Definition *d);
/* Requests this client's own AllowFrom=/DenyFrom= refused (0 for NULL). */
uint64_t http_upstreams_refused(HttpUpstreams *u);

/* The mux callback for HTTP mode requests (h passes to the callee). */
/* Shutting down: requests still waiting for DNS get 503 now. */
void http_upstreams_drain(HttpUpstreams *u);
void http_upstreams_request(HttpUpstreams *u, MuxStream *s, HttpHead *h, bool end_stream);
