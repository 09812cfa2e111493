// SPDX-License-Identifier: LGPL-2.1-or-later
/* HTTP mode, tunnel client: credentials, rate limits and header rules per host; see
 * httpguard.h.
 *
 * Checking a password costs what its hash was made to cost (bcrypt, SHA-crypt: milliseconds
 * to a quarter second), on the one thread that carries every stream. So a password that
 * passed is remembered (its SHA-256 with the user, for ten minutes, per loaded file), and the
 * time spent hashing is budgeted: past 200 ms in one second, requests whose credentials are not
 * remembered get 503 with Retry-After until the next second. Known gaps (docs/configuration.md):
 * one budget for all visitors, and one hash of any cost runs on the loop; hashing in a worker
 * thread with a budget per visitor is the way out. */

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
#include "time-util.h"

#define PASSED_CACHE 64
#define PASSED_TTL_USEC (10 * 60 * USEC_PER_SEC)
#define HASH_BUDGET_USEC (200 * USEC_PER_MSEC)
#define RATE_SLOTS 4096   /* visitors tracked at once, per client */
#define RATE_PROBE 8

typedef struct Passed {
        const Htpasswd *file;     /* a reload loads new files: old entries then match nothing */
        uint8_t digest[32];       /* SHA-256 of "user:password" */
        uint64_t until;
} Passed;

/* GCRA: the theoretical arrival time of the visitor's next request under its rule. */
typedef struct RateSlot {
        const RateRule *rule;
        uint8_t addr[16];
        uint64_t tat;
} RateSlot;

struct HttpGuard {
        Passed passed[PASSED_CACHE];
        unsigned passed_next;
        uint64_t budget_second, budget_used;
        RateSlot *slots;
        RateLimit log;
};

int http_guard_new(HttpGuard **ret) {
        HttpGuard *g;

        assert(ret);
        g = new0(HttpGuard, 1);
        if (!g)
                return -ENOMEM;
        g->slots = new0(RateSlot, RATE_SLOTS);
        if (!g->slots) {
                free(g);
                return -ENOMEM;
        }
        g->log = (RateLimit) { .interval_usec = 10 * USEC_PER_SEC, .burst = 10 };
        *ret = g;
        return 0;
}

HttpGuard *http_guard_free(HttpGuard *g) {
        if (!g)
                return NULL;
        free(g->slots);
        free(g);
        return NULL;
}

void http_guard_reset(HttpGuard *g) {
        assert(g);
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

static bool passed_find(HttpGuard *g, const Htpasswd *file, const uint8_t digest[static 32], uint64_t now) {
        bool found = false;

        for (size_t i = 0; i < PASSED_CACHE; i++)
                found |= g->passed[i].file == file && g->passed[i].until > now &&
                         secret_equal((const char *) g->passed[i].digest, 32, (const char *) digest, 32);
        return found;
}

static void passed_add(HttpGuard *g, const Htpasswd *file, const uint8_t digest[static 32], uint64_t now) {
        Passed *p = &g->passed[g->passed_next++ % PASSED_CACHE];

        p->file = file;
        memcpy(p->digest, digest, 32);
        p->until = now + PASSED_TTL_USEC;
}

/* 1: the password is right, 0: not, -EBUSY: out of hashing time for this second. */
static int basic_verify(HttpGuard *g, const Htpasswd *file, const HttpCredentials *c, uint64_t now) {
        _cleanup_free_ char *joined = NULL;
        uint8_t digest[32];
        uint64_t t0, spent;
        int r;

        joined = malloc(c->user_len + 1 + c->password_len);
        if (!joined)
                return -ENOMEM;
        memcpy(joined, c->user, c->user_len);
        joined[c->user_len] = ':';
        memcpy(joined + c->user_len + 1, c->password, c->password_len);
        r = sha256(joined, c->user_len + 1 + c->password_len, digest);
        explicit_bzero(joined, c->user_len + 1 + c->password_len);
        if (r < 0)
                return r;
        if (passed_find(g, file, digest, now))
                return 1;

        if (now / USEC_PER_SEC != g->budget_second) {
                g->budget_second = now / USEC_PER_SEC;
                g->budget_used = 0;
        }
        if (g->budget_used >= HASH_BUDGET_USEC)
                return -EBUSY;
        t0 = now_usec();
        r = htpasswd_verify(file, c->user, c->user_len, c->password, c->password_len);
        spent = now_usec() - t0;
        g->budget_used += spent;
        if (r > 0)
                passed_add(g, file, digest, now);
        return r;
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

void http_guard_check(HttpGuard *g, const HttpRules *rules, const char *host, const char *visitor, HttpHead *h,
                      HttpVerdict *ret) {
        const CredentialFile *basic, *bearer;
        const RateRule *rate;
        uint64_t now;

        assert(g);
        assert(rules);
        assert(visitor);
        assert(h);
        assert(ret);

        *ret = (HttpVerdict) {};
        if (http_rules_empty(rules))
                return;
        now = now_usec();

        /* The rate first: a guesser is slowed before any hashing. */
        rate = http_rules_rate(rules, host);
        if (rate) {
                unsigned wait = rate_check(g, rate, visitor, now);
                if (wait > 0) {
                        *ret = (HttpVerdict) { .status = 429, .retry_after_sec = wait };
                        return;
                }
        }

        basic = http_rules_basic(rules, host);
        bearer = http_rules_bearer(rules, host);
        if (!basic && !bearer)
                return;

        const char *value = http_head_get(h, "authorization");
        _cleanup_(http_credentials_done) HttpCredentials c = {};
        int r = value && http_head_count(h, "authorization") == 1
                        ? http_authorization_parse(value, strlen(value), &c) : -EBADMSG;
        if (r >= 0 && c.scheme == HTTP_AUTH_BASIC && basic) {
                r = basic_verify(g, basic->htpasswd, &c, now);
                if (r == -EBUSY) {
                        if (ratelimit_below(&g->log))
                                log_warning("HTTP %s: password checks took over 200 ms this second; answering 503 "
                                            "until the next (a guesser from %s?).", host ?: "*",
                                            *visitor ? visitor : "an unknown address");
                        *ret = (HttpVerdict) { .status = 503, .retry_after_sec = 1 };
                        return;
                }
        } else if (r >= 0 && c.scheme == HTTP_AUTH_BEARER && bearer)
                r = bearer_tokens_match(bearer->tokens, c.token, c.token_len) ? 1 : 0;
        else
                r = 0;
        if (r > 0) {
                (void) http_head_remove(h, "authorization");
                return;
        }
        ret->status = 401;
        challenge(ret, host, basic, bearer);
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
