// SPDX-License-Identifier: LGPL-2.1-or-later
/* An RFC 8555 (ACME) client for HTTP-01: account key and JWS (ES256) with GnuTLS, HTTP with
 * libcurl (web.h), JSON with json-c. acme_obtain() blocks for seconds to minutes: the exit
 * server runs it in a helper process (daemon/acmecert.c), never on its event loop.
 *
 * HTTP-01 is answered "stateless": the key authorization of any token is token + "." + the
 * account key's thumbprint, which the exit server computes once; nothing passes between the
 * helper and the HTTP port. */
#pragma once

#include <gnutls/abstract.h>

#include "macro.h"

#define ACME_CHALLENGE_PREFIX "/.well-known/acme-challenge/"

/* Loads the ECDSA P-256 account key at path, or makes one there (0600). */
int acme_account_key_load(const char *path, gnutls_privkey_t *ret, char **ret_error);
/* RFC 7638 JWK thumbprint, base64url. */
int acme_jwk_thumbprint(gnutls_privkey_t key, char **ret);
/* Whether s is a syntactically valid HTTP-01 token (base64url, 1..256 characters). */
bool acme_token_is_valid(const char *s, size_t n);

typedef struct AcmeRequest {
        const char *directory_url;
        const char *ca_file;            /* trust for the CA's HTTPS; NULL: the system's */
        const char *email;              /* NULL: no contact */
        char *const *domains;
        size_t n_domains;
        gnutls_privkey_t account_key;
        unsigned poll_timeout_sec;      /* 0: 300 */
} AcmeRequest;

/* Orders a certificate for the domains and returns the chain and its new key, both PEM.
 * Errors carry the CA's problem document ("rateLimited: ...", retry-after). */
int acme_obtain(const AcmeRequest *q, char **ret_chain_pem, char **ret_key_pem, long *ret_retry_after_sec,
                char **ret_error);

/* When to renew a certificate valid [not_before, not_after] (seconds): 30 days before it
 * expires, or at two thirds of its lifetime when that is shorter than 90 days. */
uint64_t acme_renew_time(uint64_t not_before, uint64_t not_after);

/* ---- the parsers for what the CA sends (fuzz/fuzz-acme.c) ---- */

typedef struct AcmeDirectory {
        char *new_nonce, *new_account, *new_order;
} AcmeDirectory;

typedef struct AcmeOrder {
        char *status;
        char **authorizations;
        size_t n_authorizations;
        char *finalize;
        char *certificate;
} AcmeOrder;

typedef struct AcmeAuthz {
        char *status;
        char *identifier;       /* the DNS name */
        char *challenge_url;    /* the http-01 challenge */
        char *token;
        char *challenge_status;
        char *error;            /* the challenge's error, formatted */
} AcmeAuthz;

int acme_parse_directory(const char *json, size_t n, AcmeDirectory *ret);
int acme_parse_order(const char *json, size_t n, AcmeOrder *ret);
int acme_parse_authz(const char *json, size_t n, AcmeAuthz *ret);
/* "rateLimited: too many certificates (HTTP 429)" from a problem document (or its absence). */
char *acme_problem_string(const char *json, size_t n, long status);
void acme_directory_done(AcmeDirectory *d);
void acme_order_done(AcmeOrder *o);
void acme_authz_done(AcmeAuthz *a);
