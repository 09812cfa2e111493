// SPDX-License-Identifier: LGPL-2.1-or-later
/* X.509 helpers; see x509.h. GnuTLS error codes end here: callers see -errno only
 * (-ENOMEM, -EIO, -EBADMSG, -EINVAL). */

#include <arpa/inet.h>
#include <assert.h>
#include <gnutls/abstract.h>
#include <stdio.h>
#include <time.h>

#include "crypto-util.h"
#include "encoding.h"
#include "fileio.h"
#include "macro.h"
#include "tls.h"
#include "x509.h"

#define PEM_FILE_MAX (1024 * 1024)

gnutls_x509_crt_t x509_crt_free(gnutls_x509_crt_t c) {
        gnutls_x509_crt_deinit(c);
        return NULL;
}
gnutls_x509_privkey_t x509_key_free(gnutls_x509_privkey_t k) {
        gnutls_x509_privkey_deinit(k);
        return NULL;
}

/* One PEM file into a certificate (ret_crt) or a private key (ret_key): exactly one is set. The
 * file's bytes are erased either way, as a key's must be. */
static int load_pem(const char *path, gnutls_x509_crt_t *ret_crt, gnutls_x509_privkey_t *ret_key) {
        _cleanup_(erase_and_freep) char *pem = NULL;
        _cleanup_(x509_crt_freep) gnutls_x509_crt_t c = NULL;
        _cleanup_(x509_key_freep) gnutls_x509_privkey_t k = NULL;
        gnutls_datum_t d;
        size_t n;
        int r;

        assert(path);
        assert(!!ret_crt != !!ret_key);

        r = read_full_file(path, PEM_FILE_MAX, &pem, &n);
        if (r < 0)
                return r;
        d = (gnutls_datum_t) { (unsigned char *) pem, (unsigned) n };
        if (ret_crt ? gnutls_x509_crt_init(&c) < 0 : gnutls_x509_privkey_init(&k) < 0)
                return -ENOMEM;
        if ((ret_crt ? gnutls_x509_crt_import(c, &d, GNUTLS_X509_FMT_PEM)
                     : gnutls_x509_privkey_import(k, &d, GNUTLS_X509_FMT_PEM)) < 0)
                return -EBADMSG;
        if (ret_crt)
                *ret_crt = TAKE_PTR(c);
        else
                *ret_key = TAKE_PTR(k);
        return 0;
}

int x509_load_crt(const char *path, gnutls_x509_crt_t *ret) {
        assert(ret);
        return load_pem(path, ret, NULL);
}

int x509_load_key(const char *path, gnutls_x509_privkey_t *ret) {
        assert(ret);
        return load_pem(path, NULL, ret);
}

int x509_export_pem(gnutls_x509_crt_t crt, gnutls_x509_privkey_t key, char **ret) {
        gnutls_datum_t d = {};
        char *s;

        assert(crt || key);
        assert(ret);

        if ((crt ? gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_PEM, &d)
                 : gnutls_x509_privkey_export2(key, GNUTLS_X509_FMT_PEM, &d)) < 0)
                return -EIO;
        s = strndup((const char *) d.data, d.size);
        if (!crt)
                explicit_bzero(d.data, d.size);
        gnutls_free(d.data);
        if (!s)
                return -ENOMEM;
        *ret = s;
        return 0;
}

int x509_save_pem(const char *path, gnutls_x509_crt_t crt, gnutls_x509_privkey_t key) {
        _cleanup_(erase_and_freep) char *pem = NULL;
        int r;

        assert(path);

        r = x509_export_pem(crt, key, &pem);
        if (r < 0)
                return r;
        return write_file_atomic(path, pem, strlen(pem), crt ? 0644 : 0600);
}

int x509_save_pair(const char *dir, const char *stem, gnutls_x509_crt_t crt, gnutls_x509_privkey_t key) {
        _cleanup_free_ char *pc = NULL, *pk = NULL;
        int r;

        assert(dir && stem && crt && key);

        if (asprintf(&pc, "%s/%s.crt", dir, stem) < 0 || asprintf(&pk, "%s/%s.key", dir, stem) < 0)
                return -ENOMEM;
        r = x509_save_pem(pk, NULL, key);
        if (r < 0)
                return r;
        return x509_save_pem(pc, crt, NULL);
}

int x509_new_key(gnutls_x509_privkey_t *ret) {
        _cleanup_(x509_key_freep) gnutls_x509_privkey_t k = NULL;

        assert(ret);

        if (gnutls_x509_privkey_init(&k) < 0)
                return -ENOMEM;
        if (gnutls_x509_privkey_generate(k, GNUTLS_PK_ECDSA, GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1),
                                         0) < 0)
                return -EIO;
        *ret = TAKE_PTR(k);
        return 0;
}

static int sign(gnutls_x509_crt_t crt, gnutls_x509_crt_t issuer, gnutls_x509_privkey_t issuer_key) {
        gnutls_privkey_t pk;
        int r;

        if (gnutls_privkey_init(&pk) < 0)
                return -ENOMEM;
        r = gnutls_privkey_import_x509(pk, issuer_key, 0);
        if (r >= 0)
                r = gnutls_x509_crt_privkey_sign(crt, issuer, pk, GNUTLS_DIG_SHA256, 0);
        gnutls_privkey_deinit(pk);
        return r < 0 ? -EIO : 0;
}

static int new_crt(gnutls_x509_privkey_t key, const char *cn, unsigned days, gnutls_x509_crt_t *ret) {
        _cleanup_(x509_crt_freep) gnutls_x509_crt_t c = NULL;
        uint8_t serial[16];
        time_t now = time(NULL);

        if (gnutls_x509_crt_init(&c) < 0)
                return -ENOMEM;
        if (random_bytes(serial, sizeof(serial)) < 0)
                return -EIO;
        serial[0] &= 0x7f; /* positive */
        if (gnutls_x509_crt_set_version(c, 3) < 0 || gnutls_x509_crt_set_serial(c, serial, sizeof(serial)) < 0 ||
            gnutls_x509_crt_set_activation_time(c, now - 3600) < 0 ||
            gnutls_x509_crt_set_expiration_time(c, now + (time_t) days * 86400) < 0 ||
            gnutls_x509_crt_set_dn_by_oid(c, GNUTLS_OID_X520_COMMON_NAME, 0, cn, strlen(cn)) < 0 ||
            gnutls_x509_crt_set_key(c, key) < 0)
                return -EIO;
        *ret = TAKE_PTR(c);
        return 0;
}

int x509_make_ca(const char *cn, unsigned days, gnutls_x509_crt_t *ret_crt, gnutls_x509_privkey_t *ret_key) {
        _cleanup_(x509_crt_freep) gnutls_x509_crt_t c = NULL;
        _cleanup_(x509_key_freep) gnutls_x509_privkey_t k = NULL;
        uint8_t id[64];
        size_t idlen = sizeof(id);
        int r;

        assert(cn);
        assert(ret_crt && ret_key);

        r = x509_new_key(&k);
        if (r < 0)
                return r;
        r = new_crt(k, cn, days, &c);
        if (r < 0)
                return r;
        if (gnutls_x509_crt_set_basic_constraints(c, 1, 0) < 0 ||
            gnutls_x509_crt_set_key_usage(c, GNUTLS_KEY_KEY_CERT_SIGN | GNUTLS_KEY_CRL_SIGN) < 0 ||
            gnutls_x509_crt_get_key_id(c, GNUTLS_KEYID_USE_SHA1, id, &idlen) < 0 ||
            gnutls_x509_crt_set_subject_key_id(c, id, idlen) < 0)
                return -EIO;
        r = sign(c, c, k);
        if (r < 0)
                return r;
        *ret_crt = TAKE_PTR(c);
        *ret_key = TAKE_PTR(k);
        return 0;
}

static int add_san(gnutls_x509_crt_t c, const char *san) {
        uint8_t ip[16];
        if (inet_pton(AF_INET, san, ip) == 1)
                return gnutls_x509_crt_set_subject_alt_name(c, GNUTLS_SAN_IPADDRESS, ip, 4, GNUTLS_FSAN_APPEND);
        if (inet_pton(AF_INET6, san, ip) == 1)
                return gnutls_x509_crt_set_subject_alt_name(c, GNUTLS_SAN_IPADDRESS, ip, 16, GNUTLS_FSAN_APPEND);
        return gnutls_x509_crt_set_subject_alt_name(c, GNUTLS_SAN_DNSNAME, san, strlen(san), GNUTLS_FSAN_APPEND);
}

int x509_issue_server(gnutls_x509_crt_t ca, gnutls_x509_privkey_t ca_key, char *const *sans, size_t n_sans,
                      unsigned days, gnutls_x509_crt_t *ret_crt, gnutls_x509_privkey_t *ret_key) {
        _cleanup_(x509_crt_freep) gnutls_x509_crt_t c = NULL;
        _cleanup_(x509_key_freep) gnutls_x509_privkey_t k = NULL;
        uint8_t id[64];
        size_t idlen = sizeof(id);
        int r;

        assert(ca && ca_key);
        assert(sans || n_sans == 0);
        assert(ret_crt && ret_key);

        r = x509_new_key(&k);
        if (r < 0)
                return r;
        r = new_crt(k, n_sans > 0 ? sans[0] : "inletsd", days, &c);
        if (r < 0)
                return r;
        if (gnutls_x509_crt_set_basic_constraints(c, 0, -1) < 0 ||
            gnutls_x509_crt_set_key_usage(c, GNUTLS_KEY_DIGITAL_SIGNATURE) < 0 ||
            gnutls_x509_crt_set_key_purpose_oid(c, GNUTLS_KP_TLS_WWW_SERVER, 0) < 0 ||
            gnutls_x509_crt_get_subject_key_id(ca, id, &idlen, NULL) < 0 ||
            gnutls_x509_crt_set_authority_key_id(c, id, idlen) < 0)
                return -EIO;
        for (size_t i = 0; i < n_sans; i++)
                if (add_san(c, sans[i]) < 0)
                        return -EINVAL;
        r = sign(c, ca, ca_key);
        if (r < 0)
                return r;
        *ret_crt = TAKE_PTR(c);
        *ret_key = TAKE_PTR(k);
        return 0;
}

/* Whether crt names exactly the SANs asked for, in any order. */
bool x509_crt_names_match(gnutls_x509_crt_t crt, char *const *sans, size_t n_sans) {
        size_t n = 0;

        assert(crt);
        assert(sans || n_sans == 0);

        for (unsigned seq = 0;; seq++) {
                char buf[256];
                size_t size = sizeof(buf) - 1;
                bool found = false;
                int type = gnutls_x509_crt_get_subject_alt_name(crt, seq, buf, &size, NULL);

                if (type == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE)
                        break;
                if (type < 0)
                        return false;
                buf[size] = 0;
                for (size_t i = 0; i < n_sans && !found; i++) {
                        uint8_t ip[16];
                        if (type == GNUTLS_SAN_IPADDRESS) {
                                if ((size == 4 && inet_pton(AF_INET, sans[i], ip) == 1 && memcmp(ip, buf, 4) == 0) ||
                                    (size == 16 && inet_pton(AF_INET6, sans[i], ip) == 1 && memcmp(ip, buf, 16) == 0))
                                        found = true;
                        } else if (type == GNUTLS_SAN_DNSNAME && strcasecmp(buf, sans[i]) == 0)
                                found = true;
                }
                if (!found)
                        return false;
                n++;
        }
        return n == n_sans;
}

int x509_fingerprint(gnutls_x509_crt_t crt, char **ret) {
        gnutls_datum_t der = {};
        uint8_t fp[32];
        _cleanup_free_ char *hex = NULL;
        int r;

        assert(crt);
        assert(ret);

        if (gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_DER, &der) < 0)
                return -EIO;
        r = tls_cert_fingerprint(&der, fp);
        gnutls_free(der.data);
        if (r < 0)
                return r;
        hex = hexmem(fp, sizeof(fp));
        if (!hex || asprintf(ret, "sha256:%s", hex) < 0)
                return -ENOMEM;
        return 0;
}
