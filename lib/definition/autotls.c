// SPDX-License-Identifier: LGPL-2.1-or-later
/* Auto-TLS certificate authority; see autotls.h. The policy only: which files, names and
 * lifetimes, and when to renew; the X.509 work itself is lib/wire/x509.c. */

#include <assert.h>
#include <stdio.h>
#include <sys/stat.h>
#include <time.h>

#include "autotls.h"
#include "fileio.h"
#include "log.h"
#include "macro.h"
#include "string-util.h"
#include "tls.h"

int x509_new_ca(gnutls_x509_crt_t *ret_crt, gnutls_x509_privkey_t *ret_key) {
        return x509_make_ca("inletsd auto-TLS CA", AUTOTLS_CA_DAYS, ret_crt, ret_key);
}

/* The state directory and its parents: a foreground run as root may be the first user of
 * /var/lib/inlets. */
static int make_state_directory(const char *dir, char **ret_error) {
        _cleanup_free_ char *p = strdup(dir);

        if (!p)
                return -ENOMEM;
        for (char *s = p + 1; (s = strchr(s, '/')); s++) {
                *s = 0;
                (void) mkdir(p, 0755);
                *s = '/';
        }
        if (mkdir(dir, 0700) < 0 && errno != EEXIST)
                return errorf(ret_error, -errno, "Failed to create state directory %s: %m", dir);
        return 0;
}

/* ca.crt + ca.key from dir, or a new CA saved there (then *ret_new is set). */
static int load_or_make_ca(const char *dir, gnutls_x509_crt_t *ret_crt, gnutls_x509_privkey_t *ret_key,
                           bool *ret_new, char **ret_error) {
        _cleanup_(x509_crt_freep) gnutls_x509_crt_t c = NULL;
        _cleanup_(x509_key_freep) gnutls_x509_privkey_t k = NULL;
        _cleanup_free_ char *pc = NULL, *pk = NULL;
        int r;

        if (asprintf(&pc, "%s/ca.crt", dir) < 0 || asprintf(&pk, "%s/ca.key", dir) < 0)
                return -ENOMEM;
        *ret_new = false;
        if (x509_load_crt(pc, &c) < 0 || x509_load_key(pk, &k) < 0) {
                c = x509_crt_free(c);
                k = x509_key_free(k);
                r = x509_new_ca(&c, &k);
                if (r >= 0)
                        r = x509_save_pair(dir, "ca", c, k);
                if (r < 0)
                        return errorf(ret_error, r, "Failed to create the auto-TLS CA in %s: %s", dir,
                                      strerror(-r));
                log_info("Generated a new auto-TLS CA in %s/ca.crt.", dir);
                *ret_new = true;
        }
        *ret_crt = TAKE_PTR(c);
        *ret_key = TAKE_PTR(k);
        return 0;
}

/* Whether server.crt/server.key in dir can stay: present, for these names, far from expiry,
 * issued by ca. */
static bool server_is_current(const char *dir, gnutls_x509_crt_t ca, char *const *sans, size_t n_sans) {
        _cleanup_(x509_crt_freep) gnutls_x509_crt_t srv = NULL;
        _cleanup_free_ char *pc = NULL, *pk = NULL;
        unsigned status = 0;

        if (asprintf(&pc, "%s/server.crt", dir) < 0 || asprintf(&pk, "%s/server.key", dir) < 0)
                return false;
        if (x509_load_crt(pc, &srv) < 0 || access(pk, R_OK) < 0)
                return false;
        if (!x509_crt_names_match(srv, sans, n_sans)) {
                log_info("AutoTLSSAN= changed: issuing a new server certificate.");
                return false;
        }
        if (gnutls_x509_crt_get_expiration_time(srv) < time(NULL) + AUTOTLS_RENEW_DAYS * 86400) {
                log_info("Server certificate expires within %d days: issuing a new one.", AUTOTLS_RENEW_DAYS);
                return false;
        }
        return gnutls_x509_crt_verify(srv, &ca, 1, 0, &status) >= 0 && status == 0;
}

static int make_server(const char *dir, gnutls_x509_crt_t ca, gnutls_x509_privkey_t ca_key, char *const *sans,
                       size_t n_sans) {
        _cleanup_(x509_crt_freep) gnutls_x509_crt_t c = NULL;
        _cleanup_(x509_key_freep) gnutls_x509_privkey_t k = NULL;
        int r;

        r = x509_issue_server(ca, ca_key, sans, n_sans, AUTOTLS_SERVER_DAYS, &c, &k);
        if (r < 0)
                return r;
        return x509_save_pair(dir, "server", c, k);
}

/* Credentials from the files in dir, serving the chain server.crt + ca.crt. */
static int load_credentials(const char *dir, gnutls_certificate_credentials_t *ret, char **ret_error) {
        _cleanup_free_ char *pca = NULL, *psrv = NULL, *psrvkey = NULL, *chain = NULL, *srv_pem = NULL,
                            *ca_pem = NULL;
        _cleanup_(erase_and_freep) char *key_pem = NULL;
        size_t ns, nc, nk;
        int r;

        if (asprintf(&pca, "%s/ca.crt", dir) < 0 || asprintf(&psrv, "%s/server.crt", dir) < 0 ||
            asprintf(&psrvkey, "%s/server.key", dir) < 0)
                return -ENOMEM;
        r = read_full_file(psrv, 1024 * 1024, &srv_pem, &ns);
        if (r >= 0)
                r = read_full_file(pca, 1024 * 1024, &ca_pem, &nc);
        if (r >= 0)
                r = read_full_file(psrvkey, 1024 * 1024, &key_pem, &nk);
        if (r < 0)
                return errorf(ret_error, r, "Failed to read auto-TLS files in %s: %s", dir, strerror(-r));
        /* Serve the chain, so a client can pin the CA and survive server certificate renewal. */
        if (asprintf(&chain, "%s%s", srv_pem, ca_pem) < 0)
                return -ENOMEM;
        return tls_server_credentials(chain, strlen(chain), key_pem, nk, ret, ret_error);
}

int autotls_setup(const char *dir, char *const *sans, size_t n_sans, gnutls_certificate_credentials_t *ret,
                  char **ret_ca_fingerprint, char **ret_error) {
        _cleanup_(x509_crt_freep) gnutls_x509_crt_t ca = NULL;
        _cleanup_(x509_key_freep) gnutls_x509_privkey_t ca_key = NULL;
        _cleanup_free_ char *fp = NULL;
        bool new_ca;
        int r;

        assert(dir);
        assert(sans || n_sans == 0);
        assert(ret);
        assert(ret_ca_fingerprint);

        r = make_state_directory(dir, ret_error);
        if (r < 0)
                return r;
        r = load_or_make_ca(dir, &ca, &ca_key, &new_ca, ret_error);
        if (r < 0)
                return r;
        if (new_ca || !server_is_current(dir, ca, sans, n_sans)) {
                r = make_server(dir, ca, ca_key, sans, n_sans);
                if (r < 0)
                        return errorf(ret_error, r, "Failed to issue the auto-TLS server certificate in %s: %s", dir,
                                    strerror(-r));
        }
        r = load_credentials(dir, ret, ret_error);
        if (r < 0)
                return r;
        r = x509_fingerprint(ca, &fp);
        if (r < 0)
                return r;
        *ret_ca_fingerprint = TAKE_PTR(fp);
        return 0;
}
