// SPDX-License-Identifier: LGPL-2.1-or-later
/* AWS Signature Version 4 (the Authorization header of AWS's APIs: EC2, Route 53), on
 * GnuTLS's SHA-256 and HMAC. Checked against AWS's published test suite (test-sigv4.c). */
#pragma once

#include <stddef.h>

typedef struct SigV4Header {
        const char *name, *value;       /* any case; the value is trimmed and its spaces folded */
} SigV4Header;

typedef struct SigV4Request {
        const char *method;
        const char *path;               /* as given, not encoded: normalized and encoded here */
        const char *query;              /* "k=v&k2=v2", not encoded; NULL or "": none */
        const SigV4Header *headers;     /* every header signed: host and x-amz-date among them */
        size_t n_headers;
        const void *body;
        size_t body_len;
        const char *amz_date;           /* "20150830T123600Z" (basic ISO 8601, UTC) */
        const char *region, *service;
        const char *access_key;
        const char *secret_key;         /* secret: never in any output */
} SigV4Request;

/* The Authorization header's value for q; the canonical request and the string to sign when
 * asked for (tests). -EINVAL for a request that cannot be signed (a missing field, an amz_date
 * that is not 16 characters). */
int sigv4_sign(const SigV4Request *q, char **ret_authorization, char **ret_canonical, char **ret_string_to_sign);

/* s percent-encoded as SigV4 wants it: unreserved characters (A-Z a-z 0-9 - . _ ~) kept, every
 * other byte %XX in upper case; '/' kept when keep_slash. Also the encoding of form bodies. */
char *sigv4_uri_encode(const char *s, size_t n, int keep_slash);

/* "20150830T123600Z" for time t (UTC); buf holds 17 bytes. */
const char *sigv4_amz_date(long long t, char buf[static 17]);
