// SPDX-License-Identifier: LGPL-2.1-or-later
/* Auto-TLS: a private CA and a server certificate for the AutoTLSSAN= names, kept in the
 * state directory and reused; regenerated only when missing, near expiry, or when the
 * names changed. */
#pragma once

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "macro.h"

#define AUTOTLS_CA_DAYS (10 * 365)
#define AUTOTLS_SERVER_DAYS 397
#define AUTOTLS_RENEW_DAYS 30

/* On success *ret holds credentials serving server.crt + ca.crt, and *ret_ca_fingerprint
 * "sha256:…" of the CA (what a client puts in ServerFingerprint=). */
int autotls_setup(const char *dir, char *const *sans, size_t n_sans, gnutls_certificate_credentials_t *ret,
                  char **ret_ca_fingerprint, char **ret_error);

/* x509 helpers, also used by the ACME client. Keys are ECDSA P-256; keys are saved 0600. */
gnutls_x509_crt_t x509_crt_free(gnutls_x509_crt_t c);
gnutls_x509_privkey_t x509_key_free(gnutls_x509_privkey_t k);
DEFINE_TRIVIAL_CLEANUP_FUNC(gnutls_x509_crt_t, x509_crt_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(gnutls_x509_privkey_t, x509_key_free);
int x509_new_key(gnutls_x509_privkey_t *ret);
int x509_load_crt(const char *path, gnutls_x509_crt_t *ret);
int x509_load_key(const char *path, gnutls_x509_privkey_t *ret);
int x509_save_pem(const char *path, gnutls_x509_crt_t crt, gnutls_x509_privkey_t key);
/* PEM of crt, or of key when crt is NULL (then a secret: erase it when done). */
int x509_export_pem(gnutls_x509_crt_t crt, gnutls_x509_privkey_t key, char **ret);
/* "sha256:…" of the DER certificate, what ServerFingerprint= takes. */
int x509_fingerprint(gnutls_x509_crt_t crt, char **ret);
/* In memory only: a self-signed CA, and a TLS server certificate issued by a CA for the DNS
 * names / IP addresses in sans, valid for days. Saving (or forgetting) them is the caller's
 * choice: auto-TLS keeps both in the state directory, inletsctl create keeps no CA key. */
int x509_new_ca(gnutls_x509_crt_t *ret_crt, gnutls_x509_privkey_t *ret_key);
int x509_issue_server(gnutls_x509_crt_t ca, gnutls_x509_privkey_t ca_key, char *const *sans, size_t n_sans,
                      unsigned days, gnutls_x509_crt_t *ret_crt, gnutls_x509_privkey_t *ret_key);
/* Whether crt names exactly these DNS names / IP addresses, in any order. */
bool x509_crt_names_match(gnutls_x509_crt_t crt, char *const *sans, size_t n_sans);
