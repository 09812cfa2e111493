// SPDX-License-Identifier: LGPL-2.1-or-later
/* HTTP mode, tunnel client: what a request must pass before it reaches its upstream
 * (BasicAuthFile=, BearerTokenFile=, RateLimit=) and the header rules on the way there and
 * back (RequestHeader=, ResponseHeader=); the rules are lib/definition/http-rules.h. */
#pragma once

#include <stdint.h>

#include "http-rules.h"
#include "http1.h"
#include "macro.h"

typedef struct HttpGuard HttpGuard;

/* What to answer instead of passing the request on: status 0 passes. */
typedef struct HttpVerdict {
        unsigned status;            /* 401, 429, 503 */
        char challenge[300];        /* 401: the WWW-Authenticate value */
        unsigned retry_after_sec;   /* 429, 503 */
} HttpVerdict;

int http_guard_new(HttpGuard **ret);
HttpGuard *http_guard_free(HttpGuard *g);
/* Forgets remembered passwords and rate counts: the rules were reloaded. */
void http_guard_reset(HttpGuard *g);
DEFINE_TRIVIAL_CLEANUP_FUNC(HttpGuard *, http_guard_free);

/* Judges request h for host (lower case; NULL when no Upstream= names it) from visitor (the
 * address the exit server saw, "" when it sent none). On a pass, the Authorization field that
 * our own credentials used is removed from h: it was for the tunnel, not for the upstream. */
void http_guard_check(HttpGuard *g, const HttpRules *rules, const char *host, const char *visitor, HttpHead *h,
                      HttpVerdict *ret);

/* RequestHeader= / ResponseHeader= for host, applied to h in place. */
int http_rules_apply(const HeaderRule *rules, size_t n, const char *host, HttpHead *h);
