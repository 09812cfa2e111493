// SPDX-License-Identifier: LGPL-2.1-or-later
/* The exit server's certificate from an ACME CA (ACMEDomain=): the stored one is served at
 * start, a helper process (fork of this one, all other descriptors closed) runs the blocking
 * ACME exchange when none fits or renewal is due, and a new certificate replaces the old for
 * new connections without touching open ones. Files in StateDirectory=/acme/: account.key,
 * key.pem (0600), cert.pem (the chain), directory (the CA it came from). */
#pragma once

#include <gnutls/gnutls.h>

#include "macro.h"
#include "manager.h"

typedef struct AcmeCert AcmeCert;

/* Called with new credentials (ownership passes) whenever a certificate is loaded or issued. */
typedef void (*AcmeCertFunc)(gnutls_certificate_credentials_t creds, void *userdata);

/* Loads the account key (making one), and the stored certificate if it still fits the
 * definition (then cb runs before this returns); schedules issuance or renewal. */
int acme_cert_new(Manager *m, AcmeCertFunc cb, void *userdata, AcmeCert **ret, char **ret_error);
AcmeCert *acme_cert_free(AcmeCert *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(AcmeCert *, acme_cert_free);

/* For the HTTP-01 answers: token "." thumbprint. */
const char *acme_cert_thumbprint(AcmeCert *c);
/* Now, whatever the schedule: -EBUSY when a run is in progress. */
int acme_cert_renew(AcmeCert *c);
/* After a reload: a certificate that no longer fits (names, CA) is replaced now. */
void acme_cert_reloaded(AcmeCert *c);

typedef struct AcmeCertInfo {
        char *const *names;       /* of the certificate in service */
        size_t n_names;
        uint64_t not_after_usec;  /* CLOCK_REALTIME; 0: none yet */
        uint64_t renew_at_usec;
        bool running;
} AcmeCertInfo;
void acme_cert_get_info(AcmeCert *c, AcmeCertInfo *ret);
