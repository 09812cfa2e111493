// SPDX-License-Identifier: LGPL-2.1-or-later
/* Name lookups on a worker thread; see resolve.h. The Resolver owns every query until its
 * answer was delivered (or dropped, when cancelled), so none outlives it. */

#include <arpa/inet.h>
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "resolve.h"

struct ResolveQuery {
        WorkerJob work;            /* first: a WorkerJob * is a ResolveQuery * */
        Resolver *resolver;
        ResolveQuery *prev, *next;
        char *host;
        resolve_done_t done;       /* NULL: cancelled */
        void *userdata;
        /* the thread's results */
        int error;
        SocketAddress *addrs;
        size_t n;
};

struct Resolver {
        Worker *worker;
        ResolveQuery *queries;
};

static ResolveQuery *query_free(ResolveQuery *q) {
        if (!q)
                return NULL;
        LIST_REMOVE(q->resolver->queries, q);
        free(q->host);
        free(q->addrs);
        free(q);
        return NULL;
}

int resolver_new(sd_event *e, Resolver **ret) {
        Resolver *r;
        int k;

        assert(e);
        assert(ret);
        r = new0(Resolver, 1);
        if (!r)
                return -ENOMEM;
        k = worker_new(e, "resolver", &r->worker);
        if (k < 0) {
                free(r);
                return k;
        }
        *ret = r;
        return 0;
}

Resolver *resolver_free(Resolver *r) {
        if (!r)
                return NULL;
        r->worker = worker_free(r->worker);
        while (r->queries)
                query_free(r->queries);
        free(r);
        return NULL;
}

static void query_run(WorkerJob *w) {
        ResolveQuery *q = (ResolveQuery *) w;

        q->error = resolve_addresses(q->host, &q->addrs, &q->n);
}

static void query_done(WorkerJob *w) {
        ResolveQuery *q = (ResolveQuery *) w;

        if (q->done)
                q->done(q->error, q->error < 0 ? NULL : TAKE_PTR(q->addrs), q->error < 0 ? 0 : q->n, q->userdata);
        query_free(q);
}

static bool is_numeric(const char *host) {
        unsigned char buf[sizeof(struct in6_addr)];

        return inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
}

int resolver_query(Resolver *r, const char *host, resolve_done_t done, void *userdata, SocketAddress **ret_addrs,
                   size_t *ret_n, ResolveQuery **ret_query) {
        ResolveQuery *q;
        int k;

        assert(r);
        assert(host);
        assert(done);
        assert(ret_addrs);
        assert(ret_n);
        assert(ret_query);

        if (is_numeric(host)) {
                /* No DNS: getaddrinfo() answers from the string alone. */
                k = resolve_addresses(host, ret_addrs, ret_n);
                return k < 0 ? k : 1;
        }
        q = new0(ResolveQuery, 1);
        if (!q)
                return -ENOMEM;
        q->host = strdup(host);
        if (!q->host) {
                free(q);
                return -ENOMEM;
        }
        q->work = (WorkerJob) { .run = query_run, .done = query_done };
        q->resolver = r;
        q->done = done;
        q->userdata = userdata;
        LIST_PREPEND(r->queries, q);
        k = worker_submit(r->worker, &q->work);
        if (k < 0) {
                query_free(q);
                return k;
        }
        *ret_query = q;
        return 0;
}

void resolve_query_cancel(ResolveQuery *q) {
        if (q)
                q->done = NULL;
}
