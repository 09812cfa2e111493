// SPDX-License-Identifier: LGPL-2.1-or-later
/* Auto-TLS: a private CA and a server certificate for the AutoTLSSAN= names, kept in the
 * state directory and reused; regenerated only when missing, near expiry, or when the
 * names changed. */
#pragma once

#include <gnutls/gnutls.h>

#include "macro.h"
#include "x509.h"

#define AUTOTLS_CA_DAYS (10 * 365)
#define AUTOTLS_SERVER_DAYS 397
#define AUTOTLS_RENEW_DAYS 30

/* On success *ret holds credentials serving server.crt + ca.crt, and *ret_ca_fingerprint
 * "sha256:…" of the CA (what a client puts in ServerFingerprint=). */
int autotls_setup(const char *dir, char *const *sans, size_t n_sans, gnutls_certificate_credentials_t *ret,
                  char **ret_ca_fingerprint, char **ret_error);

/* The auto-TLS CA in memory: self-signed, named "inletsd auto-TLS CA", valid AUTOTLS_CA_DAYS.
 * Saving (or forgetting) it is the caller's choice: auto-TLS keeps it in the state directory,
 * inletsctl create keeps no CA key. The generic helpers are lib/wire/x509.h. */
int x509_new_ca(gnutls_x509_crt_t *ret_crt, gnutls_x509_privkey_t *ret_key);
