// SPDX-License-Identifier: LGPL-2.1-or-later
/* X.509 helpers over GnuTLS: keys, certificates, PEM files and fingerprints. No policy: which
 * names, lifetimes and files a certificate gets is the caller's (auto-TLS, ACME, inletsctl
 * create). Keys are ECDSA P-256, signatures SHA-256; key files are written 0600. */
#pragma once

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "macro.h"

gnutls_x509_crt_t x509_crt_free(gnutls_x509_crt_t c);
gnutls_x509_privkey_t x509_key_free(gnutls_x509_privkey_t k);
DEFINE_TRIVIAL_CLEANUP_FUNC(gnutls_x509_crt_t, x509_crt_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(gnutls_x509_privkey_t, x509_key_free);

int x509_new_key(gnutls_x509_privkey_t *ret);
/* PEM files: -ENOENT & co. from reading, -EBADMSG when the content is not PEM of that kind. */
int x509_load_crt(const char *path, gnutls_x509_crt_t *ret);
int x509_load_key(const char *path, gnutls_x509_privkey_t *ret);
/* Writes crt, or key when crt is NULL, atomically (0644, or 0600 for a key). */
int x509_save_pem(const char *path, gnutls_x509_crt_t crt, gnutls_x509_privkey_t key);
/* Writes DIR/STEM.key then DIR/STEM.crt. */
int x509_save_pair(const char *dir, const char *stem, gnutls_x509_crt_t crt, gnutls_x509_privkey_t key);
/* PEM of crt, or of key when crt is NULL (then a secret: erase it when done). */
int x509_export_pem(gnutls_x509_crt_t crt, gnutls_x509_privkey_t key, char **ret);
/* "sha256:…" of the DER certificate, what ServerFingerprint= takes. */
int x509_fingerprint(gnutls_x509_crt_t crt, char **ret);

/* In memory only: a self-signed CA named cn, valid for days. */
int x509_make_ca(const char *cn, unsigned days, gnutls_x509_crt_t *ret_crt, gnutls_x509_privkey_t *ret_key);
/* A TLS server certificate issued by a CA for the DNS names / IP addresses in sans, valid for
 * days, with a new key. */
int x509_issue_server(gnutls_x509_crt_t ca, gnutls_x509_privkey_t ca_key, char *const *sans, size_t n_sans,
                      unsigned days, gnutls_x509_crt_t *ret_crt, gnutls_x509_privkey_t *ret_key);
/* Whether crt names exactly these DNS names / IP addresses, in any order. */
bool x509_crt_names_match(gnutls_x509_crt_t crt, char *const *sans, size_t n_sans);
