// SPDX-License-Identifier: LGPL-2.1-or-later
/* HTTP mode, tunnel client: what a request must pass before it reaches its upstream
 * (BasicAuthFile=, BearerTokenFile=, RateLimit=) and the header rules on the way there and
 * back (RequestHeader=, ResponseHeader=); the rules are lib/definition/http-rules.h. */
#pragma once

#include <stdint.h>

#include "http-rules.h"
#include "http1.h"
#include "macro.h"

#include <systemd/sd-event.h>

typedef struct HttpGuard HttpGuard;
typedef struct HttpGuardWait HttpGuardWait;

/* What to answer instead of passing the request on: status 0 passes. */
typedef struct HttpVerdict {
        unsigned status;            /* 401, 429, 503 */
        char challenge[300];        /* 401: the WWW-Authenticate value */
        unsigned retry_after_sec;   /* 429, 503 */
        bool strip_authorization;   /* a pass with our credentials: remove Authorization */
} HttpVerdict;

/* The verdict on a request that waited for a password check, from the event loop. The wait is
 * over and freed after this returns: forget it (do not cancel it) first thing. */
typedef void (*HttpGuardDone)(const HttpVerdict *v, void *userdata);

int http_guard_new(sd_event *e, HttpGuard **ret);
/* Waits for the password check running, if any (one hash), and drops every wait unanswered. */
HttpGuard *http_guard_free(HttpGuard *g);
DEFINE_TRIVIAL_CLEANUP_FUNC(HttpGuard *, http_guard_free);

/* Judges request h for host (lower case; NULL when no Upstream= names it) from visitor (the
 * address the exit server saw, "" when it sent none). 0: decided, in *ret. 1: a password must
 * be hashed, which happens on a worker thread: done(userdata) comes later with the verdict,
 * unless http_guard_cancel(*ret_wait) comes first. Remembered passwords and rate counts hold
 * while the rules stay the same (they are forgotten when rules of a new load come). Bounds:
 * HTTP_GUARD_WAITING_PER_VISITOR different checks waiting per visitor (429 past it) and
 * HTTP_GUARD_WAITING in all, run least-spent visitor first (a newcomer displaces the most
 * expensive visitor's newest check, else 503); requests with the same credentials share one
 * check. A wait may be answered before its check ran (503: displaced, or 10 s passed). */
#define HTTP_GUARD_WAITING 64
#define HTTP_GUARD_WAITING_PER_VISITOR 2
int http_guard_check(HttpGuard *g, const HttpRules *rules, const char *host, const char *visitor, const HttpHead *h,
                     HttpVerdict *ret, HttpGuardDone done, void *userdata, HttpGuardWait **ret_wait);
void http_guard_cancel(HttpGuardWait *w);
/* The rules in force now (a reload): checks still waiting that were for others are answered
 * 503 with Retry-After when they finish, never with the old rules' verdict. */
void http_guard_set_rules(HttpGuard *g, const HttpRules *rules);

/* RequestHeader= / ResponseHeader= for host, applied to h in place. */
int http_rules_apply(const HeaderRule *rules, size_t n, const char *host, HttpHead *h);
