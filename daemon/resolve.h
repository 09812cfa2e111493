// SPDX-License-Identifier: LGPL-2.1-or-later
/* Host names resolved without holding up the event loop: getaddrinfo() blocks for as long as
 * DNS takes (seconds when a server does not answer), so names go to a worker thread of their
 * own; numeric addresses are answered at once. */
#pragma once

#include "socket-util.h"
#include "worker.h"

typedef struct Resolver Resolver;
typedef struct ResolveQuery ResolveQuery;

/* The addresses (the callee takes them: free()) or an error (-EHOSTUNREACH: no such host). */
typedef void (*resolve_done_t)(int error, SocketAddress *addrs, size_t n, void *userdata);

int resolver_new(sd_event *e, Resolver **ret);
/* Waits for the lookup running, if any; queries not answered yet get no callback. */
Resolver *resolver_free(Resolver *r);
DEFINE_TRIVIAL_CLEANUP_FUNC(Resolver *, resolver_free);

/* A numeric address: 1 and the address in *ret_addrs and *ret_n at once (no callback). A name: 0
 * and a query in *ret_query whose done() comes from the loop later, unless cancelled first. */
int resolver_query(Resolver *r, const char *host, resolve_done_t done, void *userdata, SocketAddress **ret_addrs,
                   size_t *ret_n, ResolveQuery **ret_query);
/* No callback comes for q after this (the lookup may still finish on the thread). NULL is fine. */
void resolve_query_cancel(ResolveQuery *q);
