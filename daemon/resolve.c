// SPDX-License-Identifier: LGPL-2.1-or-later
/* Name lookups on worker threads; see resolve.h.
 *
 * One Lookup per name being resolved, with the queries waiting for it: asking again for a name
 * on its way adds a query, not a lookup (a storm of reloads costs one lookup per name). A
 * Lookup belongs to the loop; its Work is what the thread sees (the name, the answer), so a
 * lookup nobody waits for any more can be forgotten at once: its Work is skipped if it has not
 * started and dropped when it comes back. Each Lookup has a deadline of its own, so a query is
 * answered (-ETIMEDOUT at worst) even when getaddrinfo() takes much longer. */

#include <arpa/inet.h>
#include <assert.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "resolve.h"
#include "time-util.h"

typedef struct Lookup Lookup;

/* Lookups at a time: a name DNS never answers holds its thread until getaddrinfo() gives up
 * (seconds to minutes); the others go on meanwhile. Threads start when first needed. */
#define RESOLVE_THREADS 4

typedef struct Work {
        WorkerJob job;             /* first: a WorkerJob * is a Work * */
        Lookup *lookup;            /* the loop's: NULL once nobody waits */
        atomic_bool abandoned;     /* nobody waits: skip it if not started */
        int error;                 /* the thread's answer */
        SocketAddress *addrs;
        size_t n;
        char host[];
} Work;

struct Lookup {
        Resolver *resolver;
        Lookup *prev, *next;
        Work *work;
        ResolveQuery *queries;
        sd_event_source *timer;
        bool answering;            /* in lookup_answer(): cancels do not free it */
        bool expired;              /* its deadline answered the queries; getaddrinfo() still runs */
};

struct ResolveQuery {
        Lookup *lookup;
        ResolveQuery *prev, *next;
        bool due;                  /* answered by the lookup_answer() running */
        resolve_done_t done;
        void *userdata;
};

struct Resolver {
        sd_event *event;
        Worker *worker;            /* RESOLVE_THREADS threads, one queue */
        Lookup *lookups;
};

static Lookup *lookup_free(Lookup *l) {
        if (!l)
                return NULL;
        while (l->queries) {
                ResolveQuery *q = l->queries;
                LIST_REMOVE(l->queries, q);
                free(q);
        }
        LIST_REMOVE(l->resolver->lookups, l);
        sd_event_source_disable_unref(l->timer);
        free(l);
        return NULL;
}

/* Nobody waits for l any more: its Work goes on (or not) alone. */
static void lookup_abandon(Lookup *l) {
        l->work->lookup = NULL;
        atomic_store(&l->work->abandoned, true);
        lookup_free(l);
}

int resolver_new(sd_event *e, Resolver **ret) {
        Resolver *r;
        int k;

        assert(e);
        assert(ret);
        r = new0(Resolver, 1);
        if (!r)
                return -ENOMEM;
        r->event = sd_event_ref(e);
        k = worker_new(e, "resolver", RESOLVE_THREADS, &r->worker);
        if (k < 0) {
                resolver_free(r);
                return k;
        }
        *ret = r;
        return 0;
}

Resolver *resolver_free(Resolver *r) {
        if (!r)
                return NULL;
        /* Drops every Work, those running included (on their thread, when getaddrinfo() returns):
         * stopping never waits for DNS. */
        r->worker = worker_free(r->worker);
        while (r->lookups)
                lookup_free(r->lookups);
        sd_event_unref(r->event);
        free(r);
        return NULL;
}

static void work_run(WorkerJob *j) {
        Work *w = (Work *) j;

        if (atomic_load(&w->abandoned)) {
                w->error = -ECANCELED;
                return;
        }
        w->error = resolve_addresses(w->host, &w->addrs, &w->n);
}

static void work_drop(WorkerJob *j) {
        Work *w = (Work *) j;

        free(w->addrs);
        free(w);
}

/* Every query of l gets the answer (a copy of the addresses each). final: the thread's answer,
 * and l goes; else the deadline's: l stays, tied to its name, until its getaddrinfo() returns, so
 * a name DNS never answers holds one thread, not one per query (new queries wait for it, with a
 * deadline of their own). A callback may cancel other queries of l or ask for new lookups. */
static void lookup_answer(Lookup *l, int error, const SocketAddress *addrs, size_t n, bool final) {
        ResolveQuery *q;

        if (error >= 0 && n == 0)
                error = -EHOSTUNREACH;
        l->answering = true;
        if (final) {
                LIST_REMOVE(l->resolver->lookups, l); /* a query from a callback starts afresh */
                l->prev = l->next = NULL;
        } else {
                l->expired = true;
                l->timer = sd_event_source_disable_unref(l->timer);
        }
        /* The queries there now; those a callback adds wait for the next answer. */
        for (q = l->queries; q; q = q->next)
                q->due = true;
        for (;;) {
                resolve_done_t done;
                void *userdata;
                SocketAddress *copy = NULL;
                int e = error;

                for (q = l->queries; q && !q->due; q = q->next)
                        ;
                if (!q)
                        break;
                done = q->done;
                userdata = q->userdata;
                LIST_REMOVE(l->queries, q);
                free(q);
                if (e >= 0) {
                        copy = new0(SocketAddress, n);
                        if (copy)
                                memcpy(copy, addrs, sizeof(SocketAddress) * n);
                        else
                                e = -ENOMEM;
                }
                done(e, copy, e < 0 ? 0 : n, userdata);
        }
        l->answering = false;
        if (!final)
                return;
        l->work->lookup = NULL;
        atomic_store(&l->work->abandoned, true);
        sd_event_source_disable_unref(l->timer);
        free(l);
}

static void work_done(WorkerJob *j) {
        Work *w = (Work *) j;

        if (w->lookup)
                lookup_answer(w->lookup, w->error, w->addrs, w->n, true);
        work_drop(j);
}

static int on_deadline(sd_event_source *s, uint64_t usec, void *userdata) {
        Lookup *l = userdata;

        log_debug("Resolving %s: no answer within %" PRIu64 " s.", l->work->host, RESOLVE_TIMEOUT_USEC / USEC_PER_SEC);
        lookup_answer(l, -ETIMEDOUT, NULL, 0, false);
        return 0;
}

static bool is_numeric(const char *host) {
        unsigned char buf[sizeof(struct in6_addr)];

        return inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
}

/* The deadline of l's queries, from now. */
static int lookup_arm(Lookup *l) {
        int k;

        k = sd_event_add_time_relative(l->resolver->event, &l->timer, CLOCK_MONOTONIC, RESOLVE_TIMEOUT_USEC, 0,
                                       on_deadline, l);
        if (k < 0)
                return k;
        (void) sd_event_source_set_description(l->timer, "resolve-deadline");
        l->expired = false;
        return 0;
}

static int lookup_new(Resolver *r, const char *host, Lookup **ret) {
        size_t len = strlen(host);
        Lookup *l;
        Work *w;
        int k;

        l = new0(Lookup, 1);
        w = malloc(sizeof(Work) + len + 1);
        if (!l || !w) {
                free(l);
                free(w);
                return -ENOMEM;
        }
        *w = (Work) { .job = { .run = work_run, .done = work_done, .drop = work_drop }, .lookup = l };
        memcpy(w->host, host, len + 1);
        l->resolver = r;
        l->work = w;
        k = lookup_arm(l);
        if (k < 0) {
                free(l);
                free(w);
                return k;
        }
        k = worker_submit(r->worker, &w->job);
        if (k < 0) {
                sd_event_source_disable_unref(l->timer);
                free(l);
                free(w);
                return k;
        }
        LIST_PREPEND(r->lookups, l);
        *ret = l;
        return 0;
}

int resolver_query(Resolver *r, const char *host, resolve_done_t done, void *userdata, SocketAddress **ret_addrs,
                   size_t *ret_n, ResolveQuery **ret_query) {
        ResolveQuery *q;
        Lookup *l;
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
        for (l = r->lookups; l; l = l->next)
                if (streq(l->work->host, host))
                        break;
        if (!l) {
                k = lookup_new(r, host, &l);
                if (k < 0) {
                        free(q);
                        return k;
                }
        } else if (l->expired) {
                /* Its getaddrinfo() still runs: wait for it, with a deadline of this query's own. */
                k = lookup_arm(l);
                if (k < 0) {
                        free(q);
                        return k;
                }
        }
        q->lookup = l;
        q->done = done;
        q->userdata = userdata;
        LIST_PREPEND(l->queries, q);
        *ret_query = q;
        return 0;
}

void resolve_query_cancel(ResolveQuery *q) {
        Lookup *l;

        if (!q)
                return;
        l = q->lookup;
        LIST_REMOVE(l->queries, q);
        free(q);
        if (!l->queries && !l->answering && !l->expired)
                lookup_abandon(l);
}
