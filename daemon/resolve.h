// SPDX-License-Identifier: LGPL-2.1-or-later
/* Host names resolved without holding up the event loop: getaddrinfo() blocks for as long as
 * DNS takes (seconds when a server does not answer), so names go to a worker thread of their
 * own; numeric addresses are answered at once. */
#pragma once

#include "socket-util.h"
#include "time-util.h"
#include "worker.h"

/* A query not answered by then gets -ETIMEDOUT (getaddrinfo() may take far longer: glibc tries
 * each nameserver, search domain and family in turn); its lookup is forgotten. */
#define RESOLVE_TIMEOUT_USEC (20 * USEC_PER_SEC)

/* How long an answer serves, for the callers that keep one: a name with no address is asked
 * again (on demand) after RESOLVE_RETRY_USEC, addresses older than RESOLVE_REFRESH_USEC are
 * asked again in the background the next time they are used. */
#define RESOLVE_RETRY_USEC (5 * USEC_PER_SEC)
#define RESOLVE_REFRESH_USEC (300 * USEC_PER_SEC)

typedef struct Resolver Resolver;
typedef struct ResolveQuery ResolveQuery;

/* The addresses (the callee takes them: free()) or an error: -EHOSTUNREACH no such host,
 * -EAGAIN DNS did not answer, -ETIMEDOUT no answer within RESOLVE_TIMEOUT_USEC. */
typedef void (*resolve_done_t)(int error, SocketAddress *addrs, size_t n, void *userdata);

int resolver_new(sd_event *e, Resolver **ret);
/* Never waits for DNS (a lookup running is left to its thread); queries not answered yet get no
 * callback. */
Resolver *resolver_free(Resolver *r);
DEFINE_TRIVIAL_CLEANUP_FUNC(Resolver *, resolver_free);

/* A numeric address: 1 and the address in *ret_addrs and *ret_n at once (no callback). A name: 0
 * and a query in *ret_query whose done() comes from the loop later, unless cancelled first;
 * queries for a name already being looked up share that lookup. */
int resolver_query(Resolver *r, const char *host, resolve_done_t done, void *userdata, SocketAddress **ret_addrs,
                   size_t *ret_n, ResolveQuery **ret_query);
/* Frees q: no callback comes for it (a lookup nobody waits for is skipped or dropped). Not
 * after q's done() was called (q is gone then). NULL is fine. */
void resolve_query_cancel(ResolveQuery *q);
