// SPDX-License-Identifier: LGPL-2.1-or-later
/* HTTP mode, tunnel client: credentials, rate limits and header rules per host; see
 * httpguard.h.
 *
 * Checking a password costs what its hash was made to cost (bcrypt, SHA-crypt, yescrypt:
 * milliseconds to a second), so it never runs on the loop that carries every stream: a worker
 * thread of its own hashes (worker.c), one check at a time. Each visitor (an IPv4 address, an
 * IPv6 /64) may have HTTP_GUARD_WAITING_PER_VISITOR different checks waiting and
 * HTTP_GUARD_WAITING wait in all; a browser's parallel requests with the same credentials
 * share one check. Which check runs next is fair queuing by hashing time: every visitor and
 * its network (IPv4 /24, IPv6 /48) is charged the time its checks took, halved every 30 s,
 * and the waiting check whose visitor and network were charged least runs next. So a visitor
 * who has not been hashing is served after the check running now, however many guessers from
 * other networks keep the queue full; and when the queue is full, a newcomer charged less than
 * the most charged visitor waiting takes that one's newest check's place (it is answered 503).
 * A check whose visitors all hung up before it ran is dropped; one not started within 10 s (as
 * each hash finishes, it is looked at) is answered 503 (a heavy visitor's, passed over for
 * others). Passwords that can never match (over 128 bytes, or with a NUL) get 401 without
 * waiting. A password that passed is
 * remembered (SHA-256 of user:password, ten minutes, 1024 of them) until the rules are loaded
 * anew. */

#include <arpa/inet.h>
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "crypto-util.h"
#include "httpguard.h"
#include "log.h"
#include "ratelimit.h"
#include "socket-util.h"
#include "time-util.h"
#include "worker.h"

#define PASSED_BUCKETS 256
#define PASSED_WAYS 4
#define PASSED_TTL_USEC (10 * 60 * USEC_PER_SEC)
#define RATE_SLOTS 4096   /* visitors tracked at once, per client */
#define RATE_PROBE 8
#define USAGE_SLOTS 1024  /* visitors and networks charged with hashing time, per client */
#define USAGE_PROBE 8
#define USAGE_HALF_LIFE_USEC (30 * USEC_PER_SEC)
#define WAIT_MAX_USEC (10 * USEC_PER_SEC)  /* a check not started by then is answered 503 */

/* A password that passed, for the visitor it passed for only: another visitor's guesses never
 * find it (a hit answers at once, a miss costs a hash, and a visitor whose checks are all
 * waiting is answered 429: so the cache would tell a guesser which guesses are right). */
typedef struct Passed {
        const Htpasswd *file;     /* of the rules loaded now (all are forgotten on a new load) */
        uint8_t visitor[16];
        uint8_t digest[32];       /* SHA-256 of "user:password" */
        uint64_t until;
} Passed;

/* GCRA: the theoretical arrival time of the visitor's next request under its rule. */
typedef struct RateSlot {
        const RateRule *rule;
        uint8_t addr[16];
        uint64_t tat;
} RateSlot;

/* Hashing time charged to a visitor (kind 0) or a network (kind 1), halved every
 * USAGE_HALF_LIFE_USEC since stamp. */
typedef struct Usage {
        uint8_t key[17];
        bool used;
        uint64_t cost, stamp;
} Usage;

typedef struct Job Job;

struct HttpGuardWait {
        HttpGuard *guard;
        Job *job;
        HttpGuardWait *prev, *next;
        HttpVerdict fail;          /* the answer when the password is wrong */
        HttpGuardDone done;
        void *userdata;
};

/* One password to check. The worker reads hash, known and password and writes result; the
 * rest is the loop's. */
struct Job {
        WorkerJob work;            /* first: a WorkerJob * is a Job * */
        HttpGuard *guard;
        Job *prev, *next;          /* g->jobs: every job not delivered yet */
        HttpGuardWait *waits;
        uint64_t serial;           /* of the rules it was for */
        const Htpasswd *file;
        uint8_t digest[32];
        uint8_t visitor[16];
        bool submitted;            /* handed to the worker (one job at a time) */
        bool evicted;              /* in g->evicted */
        uint64_t queued;           /* when it came */
        uint64_t cost_usec;        /* the worker's: how long the hash took */
        char *hash;
        bool known;
        char *password;
        size_t password_len;
        int result;
};

struct HttpGuard {
        sd_event *event;
        Passed passed[PASSED_BUCKETS][PASSED_WAYS];
        const HttpRules *rules;
        uint64_t rules_serial;
        RateSlot *slots;
        RateLimit log;
        Job *jobs;                 /* waiting or at the worker, newest first */
        unsigned n_jobs;
        bool busy;                 /* a job is at the worker */
        uint64_t hash_cost;        /* µs, a moving average of the checks done */
        Job *evicted;              /* gave their place to a newcomer: answered 503 from defer */
        sd_event_source *defer;
        Usage *usage;
        Worker *worker;            /* hashes, off the loop */
};

static int evicted_handler(sd_event_source *src, void *userdata);

static Job *job_free(Job *j) {
        if (!j)
                return NULL;
        if (j->password) {
                explicit_bzero(j->password, j->password_len);
                free(j->password);
        }
        if (j->hash) {
                explicit_bzero(j->hash, strlen(j->hash));
                free(j->hash);
        }
        explicit_bzero(j->digest, sizeof(j->digest));
        free(j);
        return NULL;
}

int http_guard_new(sd_event *e, HttpGuard **ret) {
        _cleanup_(http_guard_freep) HttpGuard *g = NULL;
        int r;

        assert(e);
        assert(ret);
        g = new0(HttpGuard, 1);
        if (!g)
                return -ENOMEM;
        g->event = sd_event_ref(e);
        g->hash_cost = 1000; /* until one is measured */
        g->slots = new0(RateSlot, RATE_SLOTS);
        g->usage = new0(Usage, USAGE_SLOTS);
        if (!g->slots || !g->usage)
                return -ENOMEM;
        r = worker_new(e, "http-password-checks", 1, &g->worker);
        if (r < 0)
                return r;
        r = sd_event_add_defer(e, &g->defer, evicted_handler, g);
        if (r < 0)
                return r;
        (void) sd_event_source_set_description(g->defer, "http-guard-evicted");
        (void) sd_event_source_set_enabled(g->defer, SD_EVENT_OFF);
        g->log = (RateLimit) { .interval_usec = 10 * USEC_PER_SEC, .burst = 10 };
        *ret = TAKE_PTR(g);
        return 0;
}

HttpGuard *http_guard_free(HttpGuard *g) {
        if (!g)
                return NULL;
        /* First the thread (after the hash it runs), then the jobs it held. */
        g->worker = worker_free(g->worker);
        g->defer = sd_event_source_disable_unref(g->defer);
        for (Job **list = &g->jobs; list; list = list == &g->jobs ? &g->evicted : NULL)
                while (*list) {
                        Job *j = *list;
                        while (j->waits) {
                                HttpGuardWait *w = j->waits;
                                LIST_REMOVE(j->waits, w);
                                w->job = NULL; /* its owner frees it with http_guard_cancel() */
                                w->guard = NULL;
                        }
                        LIST_REMOVE(*list, j);
                        job_free(j);
                }
        explicit_bzero(g->passed, sizeof(g->passed));
        free(g->slots);
        free(g->usage);
        sd_event_unref(g->event);
        free(g);
        return NULL;
}

/* Rules of a new load: what was remembered and counted was for the old ones. */
void http_guard_set_rules(HttpGuard *g, const HttpRules *rules) {
        if (g->rules == rules && g->rules_serial == rules->serial)
                return;
        g->rules = rules;
        g->rules_serial = rules->serial;
        explicit_bzero(g->passed, sizeof(g->passed));
        memset(g->slots, 0, sizeof(RateSlot) * RATE_SLOTS);
}

/* ---- RateLimit= ---- */

/* The visitor as 16 bytes: IPv4 v4-mapped, IPv6 cut to its /64 (one host's share of a
 * network); "" or garbage all count as one visitor. */
static void visitor_key(const char *visitor, uint8_t ret[static 16]) {
        struct in_addr a4;

        memset(ret, 0, 16);
        if (inet_pton(AF_INET, visitor, &a4) == 1) {
                ret[10] = ret[11] = 0xff;
                memcpy(ret + 12, &a4, 4);
        } else if (inet_pton(AF_INET6, visitor, ret) == 1)
                memset(ret + 8, 0, 8);
}

static uint32_t slot_hash(const RateRule *rule, const uint8_t addr[static 16]) {
        uint64_t h = (uint64_t) (uintptr_t) rule * 0x9e3779b97f4a7c15ULL;

        /* Not keyed: a visitor picking colliding addresses can only crowd its own probe run,
         * where the slot most in debt survives (below). */
        for (size_t i = 0; i < 16; i++)
                h = (h ^ addr[i]) * 0x100000001b3ULL;
        return (uint32_t) (h >> 32);
}

/* 0: go ahead; else the seconds until the visitor may ask again. */
static unsigned rate_check(HttpGuard *g, const RateRule *rule, const char *visitor, uint64_t now) {
        uint8_t addr[16];
        uint64_t limit = (uint64_t) (rule->burst - 1) * rule->interval_usec, tat;
        uint32_t h;
        RateSlot *s = NULL, *weakest = NULL;

        visitor_key(visitor, addr);
        h = slot_hash(rule, addr);
        for (unsigned i = 0; i < RATE_PROBE; i++) {
                RateSlot *c = &g->slots[(h + i) % RATE_SLOTS];
                if (c->rule == rule && memcmp(c->addr, addr, 16) == 0) {
                        s = c;
                        break;
                }
                /* A slot whose time has passed is as good as empty; else the one least in debt
                 * goes, so a heavy user stays tracked. */
                if (!weakest || c->tat < weakest->tat)
                        weakest = c;
        }
        if (!s) {
                s = weakest;
                *s = (RateSlot) { .rule = rule, .tat = 0 };
                memcpy(s->addr, addr, 16);
        }
        tat = MAX(s->tat, now);
        if (tat - now > limit)
                return (unsigned) ((tat - now - limit + USEC_PER_SEC - 1) / USEC_PER_SEC);
        s->tat = tat + rule->interval_usec;
        return 0;
}

/* ---- BasicAuthFile=, BearerTokenFile= ---- */

static Passed *passed_bucket(HttpGuard *g, const uint8_t digest[static 32]) {
        /* The digest is SHA-256: spread already. Only passwords that passed get in, so a
         * visitor cannot crowd a bucket without knowing passwords. */
        return g->passed[digest[0]];
}

static bool passed_find(HttpGuard *g, const Htpasswd *file, const uint8_t visitor[static 16],
                        const uint8_t digest[static 32], uint64_t now) {
        Passed *b = passed_bucket(g, digest);
        bool found = false;

        for (size_t i = 0; i < PASSED_WAYS; i++)
                found |= b[i].file == file && b[i].until > now && memcmp(b[i].visitor, visitor, 16) == 0 &&
                         secret_equal((const char *) b[i].digest, 32, (const char *) digest, 32);
        return found;
}

static void passed_add(HttpGuard *g, const Htpasswd *file, const uint8_t visitor[static 16],
                       const uint8_t digest[static 32], uint64_t now) {
        Passed *b = passed_bucket(g, digest), *p = &b[0];

        /* The entry that expires first goes. */
        for (size_t i = 1; i < PASSED_WAYS; i++)
                if (b[i].until < p->until)
                        p = &b[i];
        p->file = file;
        memcpy(p->visitor, visitor, 16);
        memcpy(p->digest, digest, 32);
        p->until = now + PASSED_TTL_USEC;
}

static int credentials_digest(const HttpCredentials *c, uint8_t ret[static 32]) {
        _cleanup_free_ char *joined = NULL;
        size_t n = c->user_len + 1 + c->password_len;
        int r;

        joined = malloc(n);
        if (!joined)
                return -ENOMEM;
        memcpy(joined, c->user, c->user_len);
        joined[c->user_len] = ':';
        memcpy(joined + c->user_len + 1, c->password, c->password_len);
        r = sha256(joined, n, ret);
        explicit_bzero(joined, n);
        return r;
}

/* ---- fair queuing of the checks ---- */

/* The visitor's network: an IPv4 /24 (v4-mapped), an IPv6 /48. */
static void usage_key(const uint8_t visitor[static 16], bool network, uint8_t ret[static 17]) {
        bool v4 = visitor[10] == 0xff && visitor[11] == 0xff && memcmp(visitor, (const uint8_t[10]) {}, 10) == 0;

        memcpy(ret, visitor, 16);
        ret[16] = network;
        if (network)
                memset(ret + (v4 ? 15 : 6), 0, v4 ? 1 : 10);
}

static uint64_t usage_now(const Usage *u, uint64_t now) {
        uint64_t halvings = (now - MIN(u->stamp, now)) / USAGE_HALF_LIFE_USEC;
        return halvings >= 64 ? 0 : u->cost >> halvings;
}

/* The slot for key; with add, a slot is made for it (the least charged of its probe run goes,
 * so a heavy user stays tracked). */
static Usage *usage_find(HttpGuard *g, const uint8_t key[static 17], bool add, uint64_t now) {
        uint64_t h = 0xcbf29ce484222325ULL;
        Usage *weakest = NULL;

        for (size_t i = 0; i < 17; i++)
                h = (h ^ key[i]) * 0x100000001b3ULL;
        for (unsigned i = 0; i < USAGE_PROBE; i++) {
                Usage *u = &g->usage[(h + i) % USAGE_SLOTS];
                if (u->used && memcmp(u->key, key, 17) == 0)
                        return u;
                if (!weakest || (weakest->used && (!u->used || usage_now(u, now) < usage_now(weakest, now))))
                        weakest = u; /* a free slot, else the least charged */
        }
        if (!add)
                return NULL;
        *weakest = (Usage) { .used = true, .stamp = now };
        memcpy(weakest->key, key, 17);
        return weakest;
}

/* What a visitor's checks cost lately, its own and its network's, and what those of theirs
 * waiting or running beside `self` will cost (the average hash each): a guesser is charged for
 * its queue before any of it ran. */
static uint64_t usage_of(HttpGuard *g, const uint8_t visitor[static 16], const Job *self, uint64_t now) {
        uint8_t mine[17], net[17], other[17];
        uint64_t sum = 0;

        usage_key(visitor, false, mine);
        usage_key(visitor, true, net);
        for (const uint8_t *key = mine; key; key = key == mine ? net : NULL) {
                Usage *u = usage_find(g, key, false, now);
                sum += u ? usage_now(u, now) : 0;
        }
        for (const Job *j = g->jobs; j; j = j->next) {
                if (j == self)
                        continue;
                if (memcmp(j->visitor, visitor, 16) == 0)
                        sum += g->hash_cost;
                usage_key(j->visitor, true, other);
                if (memcmp(other, net, 17) == 0)
                        sum += g->hash_cost;
        }
        return sum;
}

static void usage_charge(HttpGuard *g, const uint8_t visitor[static 16], uint64_t cost, uint64_t now) {
        for (int network = 0; network <= 1; network++) {
                uint8_t key[17];
                usage_key(visitor, network, key);
                Usage *u = usage_find(g, key, true, now);
                uint64_t halvings = (now - MIN(u->stamp, now)) / USAGE_HALF_LIFE_USEC;
                u->cost = usage_now(u, now) + cost;
                /* Whole half-lives only: charges less than one apart must not stop the decay
                 * (the outside review: 40 charges 29 s apart never halved). */
                u->stamp = halvings >= 64 ? now : u->stamp + halvings * USAGE_HALF_LIFE_USEC;
        }
}

static void job_run(WorkerJob *w) {
        Job *j = (Job *) w;
        uint64_t start = now_usec();

        j->result = htpasswd_check_hash(j->hash, j->known, j->password, j->password_len);
        j->cost_usec = now_usec() - start;
}

static int evicted_handler(sd_event_source *src, void *userdata) {
        HttpGuard *g = userdata;

        while (g->evicted) {
                Job *j = g->evicted;
                LIST_REMOVE(g->evicted, j);
                /* Being answered: a done() that cancels another of its waits must not free it
                 * (http_guard_cancel() frees jobs that never reached the worker). */
                j->evicted = false;
                j->submitted = true;
                while (j->waits) {
                        HttpGuardWait *w = j->waits;
                        LIST_REMOVE(j->waits, w);
                        w->job = NULL;
                        w->done(&(HttpVerdict) { .status = 503, .retry_after_sec = 1 }, w->userdata);
                        free(w);
                }
                job_free(j);
        }
        return 0;
}

/* A waiting check gives its place up: its visitors hear 503 from the loop (never from inside
 * the request that took the place). */
static void job_evict(HttpGuard *g, Job *j) {
        assert(!j->submitted);
        LIST_REMOVE(g->jobs, j);
        g->n_jobs--;
        j->evicted = true;
        LIST_PREPEND(g->evicted, j);
        (void) sd_event_source_set_enabled(g->defer, SD_EVENT_ONESHOT);
}

static void guard_feed(HttpGuard *g);

static void deliver(HttpGuard *g, Job *j) {
        HttpVerdict pass = { .strip_authorization = true };

        LIST_REMOVE(g->jobs, j);
        g->n_jobs--;
        if (j->result > 0 && j->serial == g->rules_serial)
                passed_add(g, j->file, j->visitor, j->digest, now_usec());
        while (j->waits) {
                HttpGuardWait *w = j->waits;
                LIST_REMOVE(j->waits, w);
                w->job = NULL;
                if (j->serial != g->rules_serial)
                        /* Checked against rules a reload replaced: the visitor asks again. */
                        w->done(&(HttpVerdict) { .status = 503, .retry_after_sec = 1 }, w->userdata);
                else if (j->result > 0)
                        w->done(&pass, w->userdata);
                else if (j->result == 0)
                        w->done(&w->fail, w->userdata);
                else
                        w->done(&(HttpVerdict) { .status = 503, .retry_after_sec = 1 }, w->userdata);
                free(w);
        }
        job_free(j);
}

static void job_done(WorkerJob *w) {
        Job *j = (Job *) w;
        HttpGuard *g = j->guard;

        usage_charge(g, j->visitor, j->cost_usec, now_usec());
        /* At least 1 ms: a check waiting must always cost something (the outside review: an
         * average worn down to 0 made a network's 64 queued guesses look free). */
        g->hash_cost = MAX((g->hash_cost * 7 + j->cost_usec) / 8, (uint64_t) 1000);
        g->busy = false;
        deliver(g, j);
        guard_feed(g);
}

/* Hands the worker the waiting check whose visitor was charged least (the oldest of equals). */
static void guard_feed(HttpGuard *g) {
        uint64_t now = now_usec(), best_cost = 0;
        Job *best = NULL;

        while (!g->busy) {
                for (Job *j = g->jobs, *next; j; j = next) {
                        next = j->next;
                        if (j->submitted)
                                continue;
                        if (now - j->queued > WAIT_MAX_USEC) { /* a heavy visitor's, passed over */
                                job_evict(g, j);
                                continue;
                        }
                        uint64_t c = usage_of(g, j->visitor, j, now);
                        if (!best || c <= best_cost) { /* newest first: <= keeps the oldest */
                                best = j;
                                best_cost = c;
                        }
                }
                if (!best)
                        return;
                if (worker_submit(g->worker, &best->work) >= 0) {
                        best->submitted = true;
                        g->busy = true;
                        return;
                }
                job_evict(g, best); /* out of memory: its visitors hear 503 */
                best = NULL;
        }
}

/* 1: a wait on a check (new or shared) in *ret_wait; < 0: busy or out of memory, with *ret. */
static int basic_start(HttpGuard *g, const CredentialFile *file, const HttpCredentials *c, const char *visitor,
                       HttpVerdict *ret, HttpGuardWait **ret_wait) {
        _cleanup_free_ HttpGuardWait *w = NULL;
        uint8_t digest[32], addr[16];
        unsigned mine = 0;
        uint64_t now = now_usec();
        Job *j = NULL;
        int r;

        r = credentials_digest(c, digest);
        if (r < 0)
                return r;
        visitor_key(visitor, addr);
        if (passed_find(g, file->htpasswd, addr, digest, now)) {
                *ret = (HttpVerdict) { .strip_authorization = true };
                return 0;
        }
        w = new0(HttpGuardWait, 1);
        if (!w)
                return -ENOMEM;
        /* A check of the same credentials from the same visitor is under way: share it. */
        for (Job *i = g->jobs; i && !j; i = i->next) {
                if (memcmp(i->visitor, addr, 16) != 0)
                        continue;
                mine++;
                if (i->serial == g->rules_serial && i->file == file->htpasswd && memcmp(i->digest, digest, 32) == 0)
                        j = i;
        }
        if (!j) {
                if (mine >= HTTP_GUARD_WAITING_PER_VISITOR) {
                        *ret = (HttpVerdict) { .status = 429, .retry_after_sec = 1 };
                        return 0;
                }
                if (g->n_jobs >= HTTP_GUARD_WAITING) {
                        /* Full: the newest check of the visitor charged most makes room, if that
                         * is more than this visitor was charged. */
                        uint64_t cost, most = 0, me = usage_of(g, addr, NULL, now);
                        Job *victim = NULL;
                        for (Job *i = g->jobs; i; i = i->next)
                                if (!i->submitted && (cost = usage_of(g, i->visitor, i, now)) > most) {
                                        victim = i;
                                        most = cost;
                                }
                        if (!victim || most <= me) {
                                if (ratelimit_below(&g->log))
                                        log_warning("HTTP: %u password checks are waiting; answering 503 until one is "
                                                    "done (guessers from many networks?).", g->n_jobs);
                                *ret = (HttpVerdict) { .status = 503, .retry_after_sec = 1 };
                                return 0;
                        }
                        job_evict(g, victim);
                }
                j = new0(Job, 1);
                if (!j)
                        return -ENOMEM;
                j->work = (WorkerJob) { .run = job_run, .done = job_done };
                j->guard = g;
                j->serial = g->rules_serial;
                j->queued = now;
                j->file = file->htpasswd;
                memcpy(j->digest, digest, 32);
                memcpy(j->visitor, addr, 16);
                j->hash = strdup(htpasswd_lookup(file->htpasswd, c->user, c->user_len, &j->known));
                j->password = malloc(c->password_len + 1);
                if (j->password) {
                        memcpy(j->password, c->password, c->password_len);
                        j->password[c->password_len] = 0;
                        j->password_len = c->password_len;
                }
                if (!j->hash || !j->password) {
                        job_free(j);
                        return -ENOMEM;
                }
                LIST_PREPEND(g->jobs, j);
                g->n_jobs++;
        }
        explicit_bzero(digest, sizeof(digest));
        w->guard = g;
        w->job = j;
        LIST_PREPEND(j->waits, w);
        *ret_wait = TAKE_PTR(w);
        guard_feed(g);
        return 1;
}

void http_guard_cancel(HttpGuardWait *w) {
        if (!w)
                return;
        /* A job at the worker runs on: its result may still be remembered for the next
         * request. One nobody waits for any more is not started: hashing for visitors that
         * hung up would only serve guessers. */
        Job *j = w->job;
        if (j) {
                LIST_REMOVE(j->waits, w);
                if (!j->waits && !j->submitted && w->guard) {
                        HttpGuard *g = w->guard;
                        if (!j->evicted) {
                                LIST_REMOVE(g->jobs, j);
                                g->n_jobs--;
                        } else
                                LIST_REMOVE(g->evicted, j);
                        job_free(j);
                }
        }
        free(w);
}

static void challenge(HttpVerdict *v, const char *host, bool basic, bool bearer) {
        /* The realm names the host: [a-z0-9.-] (checked when routed), nothing to quote. */
        const char *realm = host ?: "inletsd";

        if (basic && bearer)
                snprintf(v->challenge, sizeof(v->challenge),
                         "Basic realm=\"%s\", charset=\"UTF-8\", Bearer realm=\"%s\"", realm, realm);
        else if (basic)
                snprintf(v->challenge, sizeof(v->challenge), "Basic realm=\"%s\", charset=\"UTF-8\"", realm);
        else
                snprintf(v->challenge, sizeof(v->challenge), "Bearer realm=\"%s\"", realm);
}

int http_guard_check(HttpGuard *g, const HttpRules *rules, const char *host, const char *visitor, const HttpHead *h,
                     HttpVerdict *ret, HttpGuardDone done, void *userdata, HttpGuardWait **ret_wait) {
        const CredentialFile *basic, *bearer;
        const RateRule *rate;
        int r;

        assert(g);
        assert(rules);
        assert(visitor);
        assert(h);
        assert(ret);
        assert(done);
        assert(ret_wait);

        *ret = (HttpVerdict) {};
        *ret_wait = NULL;
        if (http_rules_empty(rules))
                return 0;
        http_guard_set_rules(g, rules);

        /* The rate first: a guesser is slowed before any hashing. */
        rate = http_rules_rate(rules, host);
        if (rate) {
                unsigned wait = rate_check(g, rate, visitor, now_usec());
                if (wait > 0) {
                        *ret = (HttpVerdict) { .status = 429, .retry_after_sec = wait };
                        return 0;
                }
        }

        http_rules_credentials(rules, host, &basic, &bearer);
        if (!basic && !bearer)
                return 0;

        const char *value = http_head_get(h, "authorization");
        _cleanup_(http_credentials_done) HttpCredentials c = {};
        r = value && http_head_count(h, "authorization") == 1
                ? http_authorization_parse(value, strlen(value), &c) : -EBADMSG;
        if (r >= 0 && c.scheme == HTTP_AUTH_BASIC && basic &&
            (c.password_len > HTTP_PASSWORD_MAX || (c.password_len > 0 && memchr(c.password, 0, c.password_len)))) {
                /* Never matches, whoever the user (httpcred.h): 401 at once, no place in the
                 * queue (their checks measured no time and made queued guesses look free). */
                ret->status = 401;
                challenge(ret, host, basic, bearer);
                return 0;
        }
        if (r >= 0 && c.scheme == HTTP_AUTH_BASIC && basic) {
                HttpGuardWait *w = NULL;

                r = basic_start(g, basic, &c, visitor, ret, &w);
                if (r < 0) {
                        *ret = (HttpVerdict) { .status = 503, .retry_after_sec = 1 };
                        return 0;
                }
                if (r == 0)
                        return 0;
                w->done = done;
                w->userdata = userdata;
                w->fail.status = 401;
                challenge(&w->fail, host, basic, bearer);
                *ret_wait = w;
                return 1;
        }
        if (r >= 0 && c.scheme == HTTP_AUTH_BEARER && bearer && bearer_tokens_match(bearer->tokens, c.token, c.token_len)) {
                ret->strip_authorization = true;
                return 0;
        }
        ret->status = 401;
        challenge(ret, host, basic, bearer);
        return 0;
}

int http_rules_apply(const HeaderRule *rules, size_t n, const char *host, HttpHead *h) {
        int r;

        assert(rules || n == 0);
        assert(h);

        for (size_t i = 0; i < n; i++) {
                const HeaderRule *x = &rules[i];
                if (!header_rule_applies(x, host))
                        continue;
                if (x->action != HEADER_ADD)
                        (void) http_head_remove(h, x->name);
                if (x->action == HEADER_UNSET)
                        continue;
                r = http_head_add(h, x->name, strlen(x->name), x->value, strlen(x->value));
                if (r < 0)
                        return r;
        }
        return 0;
}
