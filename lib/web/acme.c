// SPDX-License-Identifier: LGPL-2.1-or-later
/* The ACME client; see acme.h. RFC 8555 sections are cited where the code follows one. */

#include <assert.h>
#include <gnutls/crypto.h>
#include <gnutls/x509.h>
#include <json-c/json.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "acme.h"
#include "autotls.h"
#include "crypto-util.h"
#include "encoding.h"
#include "log.h"
#include "macro.h"
#include "string-util.h"
#include "time-util.h"
#include "web.h"

#define MAX_BAD_NONCE_RETRIES 5
#define ACME_BODY_MAX (1024 * 1024)

/* ---- parsing ---- */

static json_object *parse_json(const char *s, size_t n) {
        json_tokener *t;
        json_object *o;

        if (!s || n == 0 || n > ACME_BODY_MAX)
                return NULL;
        t = json_tokener_new_ex(32);
        if (!t)
                return NULL;
        o = json_tokener_parse_ex(t, s, (int) n);
        if (json_tokener_get_error(t) != json_tokener_success || !json_object_is_type(o, json_type_object)) {
                json_object_put(o);
                o = NULL;
        }
        json_tokener_free(t);
        return o;
}

static int dup_str(json_object *o, const char *key, bool required, char **ret) {
        const char *v = json_get_string(o, key);
        if (!v)
                return required ? -EBADMSG : 0;
        *ret = strdup(v);
        return *ret ? 0 : -ENOMEM;
}

void acme_directory_done(AcmeDirectory *d) {
        free(d->new_nonce);
        free(d->new_account);
        free(d->new_order);
        *d = (AcmeDirectory) {};
}

void acme_order_done(AcmeOrder *o) {
        free(o->status);
        strv_free(o->authorizations);
        free(o->finalize);
        free(o->certificate);
        *o = (AcmeOrder) {};
}

void acme_authz_done(AcmeAuthz *a) {
        free(a->status);
        free(a->identifier);
        free(a->challenge_url);
        free(a->token);
        free(a->challenge_status);
        free(a->error);
        *a = (AcmeAuthz) {};
}

int acme_parse_directory(const char *json, size_t n, AcmeDirectory *ret) {
        _cleanup_(json_object_putp) json_object *o = parse_json(json, n);
        AcmeDirectory d = {};
        int r;

        if (!o)
                return -EBADMSG;
        r = dup_str(o, "newNonce", true, &d.new_nonce);
        if (r >= 0)
                r = dup_str(o, "newAccount", true, &d.new_account);
        if (r >= 0)
                r = dup_str(o, "newOrder", true, &d.new_order);
        if (r < 0) {
                acme_directory_done(&d);
                return r;
        }
        *ret = d;
        return 0;
}

int acme_parse_order(const char *json, size_t n, AcmeOrder *ret) {
        _cleanup_(json_object_putp) json_object *o = parse_json(json, n);
        json_object *a = NULL;
        AcmeOrder d = {};
        int r;

        if (!o)
                return -EBADMSG;
        r = dup_str(o, "status", true, &d.status);
        if (r >= 0)
                r = dup_str(o, "finalize", true, &d.finalize);
        if (r >= 0)
                r = dup_str(o, "certificate", false, &d.certificate);
        if (r >= 0 && json_object_object_get_ex(o, "authorizations", &a) && json_object_is_type(a, json_type_array)) {
                size_t k = json_object_array_length(a);
                for (size_t i = 0; i < k && r >= 0 && i < 100; i++) {
                        json_object *e = json_object_array_get_idx(a, i);
                        if (!json_object_is_type(e, json_type_string))
                                r = -EBADMSG;
                        else
                                r = strv_push(&d.authorizations, &d.n_authorizations, strdup(json_object_get_string(e)));
                }
        }
        if (r < 0) {
                acme_order_done(&d);
                return r;
        }
        *ret = d;
        return 0;
}

static char *problem_from(json_object *p, long status) {
        const char *type = json_get_string(p, "type"), *detail = json_get_string(p, "detail");
        const char *t = type && startswith(type, "urn:ietf:params:acme:error:") ? type + 27 : type;
        _cleanup_free_ char *subs = NULL;
        json_object *a = NULL;

        /* a compound error (e.g. one per identifier): the first sub-problem's detail */
        if (p && json_object_object_get_ex(p, "subproblems", &a) && json_object_is_type(a, json_type_array) &&
            json_object_array_length(a) > 0) {
                json_object *s = json_object_array_get_idx(a, 0);
                const char *sd = json_get_string(s, "detail");
                if (sd)
                        subs = asprintf_safe(" (%s)", sd);
        }
        if (status > 0)
                return asprintf_safe("%s%s%s%s (HTTP %ld)", t ?: "error", detail ? ": " : "", detail ?: "",
                                     subs ?: "", status);
        return asprintf_safe("%s%s%s%s", t ?: "error", detail ? ": " : "", detail ?: "", subs ?: "");
}

char *acme_problem_string(const char *json, size_t n, long status) {
        _cleanup_(json_object_putp) json_object *o = parse_json(json, n);
        return problem_from(o, status);
}

int acme_parse_authz(const char *json, size_t n, AcmeAuthz *ret) {
        _cleanup_(json_object_putp) json_object *o = parse_json(json, n);
        json_object *id = NULL, *ch = NULL;
        AcmeAuthz d = {};
        int r;

        if (!o)
                return -EBADMSG;
        r = dup_str(o, "status", true, &d.status);
        if (r >= 0 && json_object_object_get_ex(o, "identifier", &id))
                r = dup_str(id, "value", true, &d.identifier);
        if (r >= 0 && !d.identifier)
                r = -EBADMSG;
        if (r >= 0 && json_object_object_get_ex(o, "challenges", &ch) && json_object_is_type(ch, json_type_array)) {
                size_t k = json_object_array_length(ch);
                for (size_t i = 0; i < k && r >= 0; i++) {
                        json_object *c = json_object_array_get_idx(ch, i), *e = NULL;
                        if (!streq_ptr(json_get_string(c, "type"), "http-01"))
                                continue;
                        r = dup_str(c, "url", true, &d.challenge_url);
                        if (r >= 0)
                                r = dup_str(c, "token", true, &d.token);
                        if (r >= 0)
                                r = dup_str(c, "status", false, &d.challenge_status);
                        if (r >= 0 && json_object_object_get_ex(c, "error", &e) && !(d.error = problem_from(e, 0)))
                                r = -ENOMEM;
                        if (r >= 0 && !acme_token_is_valid(d.token, strlen(d.token)))
                                r = -EBADMSG;
                        break;
                }
        }
        if (r < 0) {
                acme_authz_done(&d);
                return r;
        }
        *ret = d;
        return 0;
}

bool acme_token_is_valid(const char *s, size_t n) {
        if (n == 0 || n > 256)
                return false;
        for (size_t i = 0; i < n; i++)
                if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9') ||
                      s[i] == '-' || s[i] == '_'))
                        return false;
        return true;
}

uint64_t acme_renew_time(uint64_t not_before, uint64_t not_after) {
        uint64_t life = not_after > not_before ? not_after - not_before : 0;
        return not_after - MIN(life / 3, (uint64_t) 30 * 24 * 3600);
}

/* ---- keys and JWS (RFC 7515, 7518 §3.4, 7638) ---- */

int acme_account_key_load(const char *path, gnutls_privkey_t *ret, char **ret_error) {
        _cleanup_(x509_key_freep) gnutls_x509_privkey_t k = NULL;
        gnutls_privkey_t pk;
        int r;

        r = x509_load_key(path, &k);
        if (r == -ENOENT) {
                r = x509_new_key(&k);
                if (r >= 0)
                        r = x509_save_pem(path, NULL, k);
                if (r < 0)
                        return errorf(ret_error, r, "Failed to make the ACME account key %s: %s", path, strerror(-r));
                log_info("Made a new ACME account key %s.", path);
        } else if (r < 0)
                return errorf(ret_error, r, "Failed to load the ACME account key %s: %s", path,
                              r == -EBADMSG ? "not a PEM private key" : strerror(-r));
        if (gnutls_x509_privkey_get_pk_algorithm(k) != GNUTLS_PK_ECDSA)
                return errorf(ret_error, -EBADMSG, "The ACME account key %s is not an ECDSA key", path);
        if (gnutls_privkey_init(&pk) < 0)
                return -ENOMEM;
        if (gnutls_privkey_import_x509(pk, k, GNUTLS_PRIVKEY_IMPORT_COPY) < 0) {
                gnutls_privkey_deinit(pk);
                return errorf(ret_error, -EBADMSG, "Failed to use the ACME account key %s", path);
        }
        *ret = pk;
        return 0;
}

/* A big-endian integer as exactly 32 bytes (P-256 coordinates and signature halves). */
static int fixed32(const gnutls_datum_t *d, uint8_t out[static 32]) {
        const uint8_t *p = d->data;
        size_t n = d->size;

        while (n > 32 && *p == 0)
                p++, n--;
        if (n > 32)
                return -EBADMSG;
        memset(out, 0, 32 - n);
        memcpy(out + 32 - n, p, n);
        return 0;
}

/* '{"crv":"P-256","kty":"EC","x":"…","y":"…"}': the members in the order RFC 7638 hashes. */
static char *jwk_json(gnutls_privkey_t key) {
        gnutls_datum_t x = {}, y = {};
        gnutls_ecc_curve_t curve;
        uint8_t bx[32], by[32];
        _cleanup_free_ char *sx = NULL, *sy = NULL;
        int r;

        if (gnutls_privkey_export_ecc_raw2(key, &curve, &x, &y, NULL, 0) < 0)
                return NULL;
        r = curve == GNUTLS_ECC_CURVE_SECP256R1 && fixed32(&x, bx) >= 0 && fixed32(&y, by) >= 0 ? 0 : -EBADMSG;
        gnutls_free(x.data);
        gnutls_free(y.data);
        if (r < 0)
                return NULL;
        sx = base64url_mem(bx, 32);
        sy = base64url_mem(by, 32);
        if (!sx || !sy)
                return NULL;
        return asprintf_safe("{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"%s\",\"y\":\"%s\"}", sx, sy);
}

int acme_jwk_thumbprint(gnutls_privkey_t key, char **ret) {
        _cleanup_free_ char *j = jwk_json(key);
        uint8_t h[32];

        if (!j || sha256(j, strlen(j), h) < 0)
                return -EIO;
        *ret = base64url_mem(h, sizeof(h));
        return *ret ? 0 : -ENOMEM;
}

/* ES256: the signature is r || s, 32 bytes each, not GnuTLS's DER. */
static char *es256_sign(gnutls_privkey_t key, const char *data) {
        gnutls_datum_t in = { (unsigned char *) data, (unsigned) strlen(data) }, sig = {}, r = {}, s = {};
        uint8_t rs[64];
        int k;

        if (gnutls_privkey_sign_data2(key, GNUTLS_SIGN_ECDSA_SHA256, 0, &in, &sig) < 0)
                return NULL;
        k = gnutls_decode_rs_value(&sig, &r, &s);
        gnutls_free(sig.data);
        if (k < 0)
                return NULL;
        k = fixed32(&r, rs) >= 0 && fixed32(&s, rs + 32) >= 0 ? 0 : -1;
        gnutls_free(r.data);
        gnutls_free(s.data);
        return k < 0 ? NULL : base64url_mem(rs, sizeof(rs));
}

/* ---- the protocol ---- */

typedef struct Acme {
        const AcmeRequest *q;
        AcmeDirectory dir;
        char *jwk;       /* the account's public key as JSON */
        char *kid;       /* the account URL */
        char *nonce;
        long retry_after;
        char **error;
} Acme;

static void acme_done(Acme *a) {
        acme_directory_done(&a->dir);
        free(a->jwk);
        free(a->kid);
        free(a->nonce);
}

static int fetch(Acme *a, const char *method, const char *url, const char *body, const char *const *headers,
                 WebResponse *ret) {
        WebRequest w = {
                .method = method, .url = url, .headers = headers, .body = body, .body_len = body ? strlen(body) : 0,
                .ca_file = a->q->ca_file, .timeout_sec = 60, .user_agent = "inletsd-acme",
        };
        int r = web_request(&w, ret, a->error);
        if (r < 0)
                return r;
        if (ret->replay_nonce && ret->replay_nonce[0]) {
                free(a->nonce);
                a->nonce = TAKE_PTR(ret->replay_nonce);
        }
        return 0;
}

static int new_nonce(Acme *a) {
        _cleanup_(web_response_done) WebResponse w = {};
        int r;

        r = fetch(a, "HEAD", a->dir.new_nonce, NULL, NULL, &w);
        if (r < 0)
                return r;
        if (!a->nonce)
                return errorf(a->error, -EBADMSG, "%s gave no Replay-Nonce (HTTP %ld)", a->dir.new_nonce, w.status);
        return 0;
}

/* A JWS-signed POST (§6.2); payload NULL is POST-as-GET (§6.3). Retries a rejected nonce
 * (§6.5) with the fresh one the error carried. Non-2xx: an error with the CA's problem. The
 * answer replaces what *ret held (which must be initialized). */
static int post(Acme *a, const char *url, json_object *payload, const char *accept, WebResponse *ret) {
        const char *pl = payload ? json_object_to_json_string_ext(payload, JSON_C_TO_STRING_PLAIN) : NULL;
        _cleanup_free_ char *pl64 = pl ? base64url_mem(pl, strlen(pl)) : strdup("");
        int r;

        if (!pl64)
                return -ENOMEM;
        for (unsigned attempt = 0;; attempt++) {
                _cleanup_free_ char *prot = NULL, *prot64 = NULL, *input = NULL, *sig = NULL, *body = NULL,
                                    *accept_hdr = NULL;
                _cleanup_(web_response_done) WebResponse w = { .retry_after_sec = -1 };
                _cleanup_(json_object_putp) json_object *h = NULL;

                if (!a->nonce) {
                        r = new_nonce(a);
                        if (r < 0)
                                return r;
                }
                h = json_object_new_object();
                json_object_object_add(h, "alg", json_object_new_string("ES256"));
                if (a->kid)
                        json_object_object_add(h, "kid", json_object_new_string(a->kid));
                else
                        json_object_object_add(h, "jwk", json_tokener_parse(a->jwk));
                json_object_object_add(h, "nonce", json_object_new_string(a->nonce));
                json_object_object_add(h, "url", json_object_new_string(url));
                prot = strdup(json_object_to_json_string_ext(h, JSON_C_TO_STRING_PLAIN));
                a->nonce = mfree(a->nonce); /* each nonce is good once */
                if (!prot || !(prot64 = base64url_mem(prot, strlen(prot))) ||
                    !(input = asprintf_safe("%s.%s", prot64, pl64)))
                        return -ENOMEM;
                sig = es256_sign(a->q->account_key, input);
                if (!sig)
                        return errorf(a->error, -EIO, "Failed to sign an ACME request with the account key");
                body = asprintf_safe("{\"protected\":\"%s\",\"payload\":\"%s\",\"signature\":\"%s\"}", prot64, pl64,
                                     sig);
                accept_hdr = asprintf_safe("Accept: %s", accept ?: "application/json");
                if (!body || !accept_hdr)
                        return -ENOMEM;
                r = fetch(a, "POST", url, body, (const char *const[]) { "Content-Type: application/jose+json",
                                                                        accept_hdr, NULL }, &w);
                if (r < 0)
                        return r;
                if (w.status >= 200 && w.status <= 299) {
                        web_response_done(ret); /* it replaces what *ret held */
                        *ret = w;
                        w = (WebResponse) { .retry_after_sec = -1 };
                        return 0;
                }
                {
                        _cleanup_free_ char *p = acme_problem_string(w.body, w.body_len, w.status);
                        if (w.status == 400 && p && startswith(p, "badNonce") && attempt < MAX_BAD_NONCE_RETRIES)
                                continue;
                        a->retry_after = w.retry_after_sec;
                        if (w.retry_after_sec > 0)
                                return errorf(a->error, -EIO, "%s: %s, retry after %ld s", url, p ?: "error",
                                              w.retry_after_sec);
                        return errorf(a->error, w.status == 429 ? -EBUSY : -EIO, "%s: %s", url, p ?: "error");
                }
        }
}

static void poll_wait(const WebResponse *w) {
        long s = w->retry_after_sec > 0 ? MIN(w->retry_after_sec, 10L) : 1;
        sleep((unsigned) s);
}

static int account(Acme *a) {
        _cleanup_(web_response_done) WebResponse w = {};
        _cleanup_(json_object_putp) json_object *p = json_object_new_object();
        int r;

        /* §7.3: an existing key's account comes back (200) with its URL; no state to keep */
        json_object_object_add(p, "termsOfServiceAgreed", json_object_new_boolean(true));
        if (a->q->email) {
                json_object *c = json_object_new_array();
                _cleanup_free_ char *m = asprintf_safe("mailto:%s", a->q->email);
                json_object_array_add(c, json_object_new_string(m ?: ""));
                json_object_object_add(p, "contact", c);
        }
        r = post(a, a->dir.new_account, p, NULL, &w);
        if (r < 0)
                return r;
        if (!w.location)
                return errorf(a->error, -EBADMSG, "%s: no account URL in the answer", a->dir.new_account);
        a->kid = TAKE_PTR(w.location);
        return 0;
}

static int authorize(Acme *a, const char *url, uint64_t deadline) {
        bool triggered = false;

        for (;;) {
                _cleanup_(web_response_done) WebResponse w = {};
                _cleanup_(acme_authz_done) AcmeAuthz z = {};
                int r;

                r = post(a, url, NULL, NULL, &w);
                if (r < 0)
                        return r;
                if (acme_parse_authz(w.body, w.body_len, &z) < 0)
                        return errorf(a->error, -EBADMSG, "%s: the authorization is not understood", url);
                if (streq(z.status, "valid"))
                        return 0;
                if (!streq(z.status, "pending"))
                        return errorf(a->error, -EIO, "The CA did not validate %s: %s%s%s", z.identifier,
                                      z.error ?: z.status, z.error ? "" : " ", z.error ? "" : "authorization");
                if (!z.challenge_url)
                        return errorf(a->error, -EOPNOTSUPP, "The CA offers no http-01 challenge for %s", z.identifier);
                if (!triggered && streq_ptr(z.challenge_status, "pending")) {
                        _cleanup_(web_response_done) WebResponse c = {};
                        _cleanup_(json_object_putp) json_object *empty = json_object_new_object();

                        /* §7.5.1: {} says "ready, validate now"; the HTTP port already answers */
                        log_info("ACME: asking the CA to validate %s (http-01).", z.identifier);
                        r = post(a, z.challenge_url, empty, NULL, &c);
                        if (r < 0)
                                return r;
                        triggered = true;
                }
                if (now_usec() > deadline)
                        return errorf(a->error, -ETIMEDOUT, "The CA did not validate %s in time", z.identifier);
                poll_wait(&w);
        }
}

static int make_csr(const AcmeRequest *q, gnutls_x509_privkey_t key, char **ret_b64) {
        gnutls_x509_crq_t crq;
        gnutls_datum_t der = {};
        int r = -EIO;

        if (gnutls_x509_crq_init(&crq) < 0)
                return -ENOMEM;
        if (gnutls_x509_crq_set_version(crq, 1) < 0 || gnutls_x509_crq_set_key(crq, key) < 0 ||
            gnutls_x509_crq_set_dn_by_oid(crq, GNUTLS_OID_X520_COMMON_NAME, 0, q->domains[0],
                                          strlen(q->domains[0])) < 0)
                goto out;
        for (size_t i = 0; i < q->n_domains; i++)
                if (gnutls_x509_crq_set_subject_alt_name(crq, GNUTLS_SAN_DNSNAME, q->domains[i],
                                                         strlen(q->domains[i]), GNUTLS_FSAN_APPEND) < 0)
                        goto out;
        if (gnutls_x509_crq_sign2(crq, key, GNUTLS_DIG_SHA256, 0) < 0 ||
            gnutls_x509_crq_export2(crq, GNUTLS_X509_FMT_DER, &der) < 0)
                goto out;
        *ret_b64 = base64url_mem(der.data, der.size);
        r = *ret_b64 ? 0 : -ENOMEM;
out:
        gnutls_free(der.data);
        gnutls_x509_crq_deinit(crq);
        return r;
}

/* The chain must start with a certificate for our key that names every domain. */
static int check_chain(const AcmeRequest *q, const char *pem, size_t n, gnutls_x509_privkey_t key, char **ret_error) {
        gnutls_datum_t d = { (unsigned char *) pem, (unsigned) n };
        gnutls_x509_crt_t *list = NULL;
        unsigned k = 0;
        uint8_t id1[64], id2[64];
        size_t l1 = sizeof(id1), l2 = sizeof(id2);
        int r = 0;

        if (gnutls_x509_crt_list_import2(&list, &k, &d, GNUTLS_X509_FMT_PEM, 0) < 0 || k == 0)
                return errorf(ret_error, -EBADMSG, "The CA's certificate chain is not PEM certificates");
        if (gnutls_x509_crt_get_key_id(list[0], GNUTLS_KEYID_USE_SHA256, id1, &l1) < 0 ||
            gnutls_x509_privkey_get_key_id(key, GNUTLS_KEYID_USE_SHA256, id2, &l2) < 0 || l1 != l2 ||
            memcmp(id1, id2, l1) != 0)
                r = errorf(ret_error, -EBADMSG, "The CA's certificate is not for the key we sent");
        for (size_t i = 0; r >= 0 && i < q->n_domains; i++)
                if (!gnutls_x509_crt_check_hostname(list[0], q->domains[i]))
                        r = errorf(ret_error, -EBADMSG, "The CA's certificate does not name %s", q->domains[i]);
        for (unsigned i = 0; i < k; i++)
                gnutls_x509_crt_deinit(list[i]);
        gnutls_free(list);
        return r;
}

/* §7.1.1 and §7.3: the directory, then the account of our key. */
static int open_account(Acme *a) {
        _cleanup_(web_response_done) WebResponse w = {};
        int r;

        r = fetch(a, "GET", a->q->directory_url, NULL, NULL, &w);
        if (r < 0)
                return r;
        if (w.status != 200 || acme_parse_directory(w.body, w.body_len, &a->dir) < 0)
                return errorf(a->error, -EBADMSG, "%s is not an ACME directory (HTTP %ld)",
                              a->q->directory_url, w.status);
        return account(a);
}

/* §7.4: an order for every domain; its URL in *ret_url. */
static int new_order(Acme *a, AcmeOrder *ret, char **ret_url) {
        _cleanup_(web_response_done) WebResponse w = {};
        _cleanup_(json_object_putp) json_object *p = json_object_new_object();
        json_object *ids = json_object_new_array();
        int r;

        for (size_t i = 0; i < a->q->n_domains; i++) {
                json_object *id = json_object_new_object();
                json_object_object_add(id, "type", json_object_new_string("dns"));
                json_object_object_add(id, "value", json_object_new_string(a->q->domains[i]));
                json_object_array_add(ids, id);
        }
        json_object_object_add(p, "identifiers", ids);
        r = post(a, a->dir.new_order, p, NULL, &w);
        if (r < 0)
                return r;
        if (!w.location || acme_parse_order(w.body, w.body_len, ret) < 0)
                return errorf(a->error, -EBADMSG, "%s: the order is not understood", a->dir.new_order);
        *ret_url = TAKE_PTR(w.location);
        return 0;
}

/* §7.4: finalize with the CSR once the order is ready, then poll until it is valid. */
static int finalize_order(Acme *a, AcmeOrder *order, const char *order_url, const char *csr,
                          uint64_t deadline) {
        _cleanup_(web_response_done) WebResponse w = {};
        int r;

        for (bool finalized = false;;) {
                if (streq(order->status, "ready") && !finalized) {
                        _cleanup_(json_object_putp) json_object *p = json_object_new_object();
                        json_object_object_add(p, "csr", json_object_new_string(csr));
                        r = post(a, order->finalize, p, NULL, &w);
                        finalized = true;
                } else if (streq(order->status, "valid") && order->certificate)
                        return 0;
                else if (streq(order->status, "invalid"))
                        return errorf(a->error, -EIO, "The CA marked the order %s invalid", order_url);
                else {
                        if (now_usec() > deadline)
                                return errorf(a->error, -ETIMEDOUT, "The order %s stayed \"%s\"", order_url,
                                              order->status);
                        poll_wait(&w);
                        web_response_done(&w);
                        r = post(a, order_url, NULL, NULL, &w);
                }
                if (r < 0)
                        return r;
                acme_order_done(order);
                if (acme_parse_order(w.body, w.body_len, order) < 0)
                        return errorf(a->error, -EBADMSG, "%s: the order is not understood", order_url);
        }
}

/* §7.4.2: the chain, checked against our key and the domains; the key as PEM. */
static int download(Acme *a, const AcmeOrder *order, gnutls_x509_privkey_t key, char **ret_chain_pem,
                    char **ret_key_pem) {
        _cleanup_(web_response_done) WebResponse cert = {};
        gnutls_datum_t kd = {};
        int r;

        r = post(a, order->certificate, NULL, "application/pem-certificate-chain", &cert);
        if (r < 0)
                return r;
        r = check_chain(a->q, cert.body, cert.body_len, key, a->error);
        if (r < 0)
                return r;
        if (gnutls_x509_privkey_export2(key, GNUTLS_X509_FMT_PEM, &kd) < 0)
                return -EIO;
        *ret_key_pem = strndup((char *) kd.data, kd.size);
        explicit_bzero(kd.data, kd.size);
        gnutls_free(kd.data);
        *ret_chain_pem = TAKE_PTR(cert.body);
        return *ret_key_pem ? 0 : -ENOMEM;
}

static int obtain(Acme *a, char **ret_chain_pem, char **ret_key_pem) {
        _cleanup_(acme_order_done) AcmeOrder order = {};
        _cleanup_(x509_key_freep) gnutls_x509_privkey_t key = NULL;
        _cleanup_free_ char *order_url = NULL, *csr = NULL;
        uint64_t deadline = now_usec() + (a->q->poll_timeout_sec ?: 300) * USEC_PER_SEC;
        int r;

        r = open_account(a);
        if (r < 0)
                return r;
        r = new_order(a, &order, &order_url);
        if (r < 0)
                return r;
        log_info("ACME: order %s for %zu name(s), status %s.", order_url, a->q->n_domains, order.status);
        for (size_t i = 0; i < order.n_authorizations; i++) {
                r = authorize(a, order.authorizations[i], deadline);
                if (r < 0)
                        return r;
        }
        r = x509_new_key(&key);
        if (r < 0)
                return r;
        r = make_csr(a->q, key, &csr);
        if (r < 0)
                return errorf(a->error, r, "Failed to make the certificate request");
        r = finalize_order(a, &order, order_url, csr, deadline);
        if (r < 0)
                return r;
        return download(a, &order, key, ret_chain_pem, ret_key_pem);
}

int acme_obtain(const AcmeRequest *q, char **ret_chain_pem, char **ret_key_pem, long *ret_retry_after_sec,
                char **ret_error) {
        _cleanup_(acme_done) Acme a = { .q = q, .error = ret_error, .retry_after = -1 };
        int r;

        assert(q);
        assert(ret_chain_pem);
        assert(ret_key_pem);

        if (ret_retry_after_sec)
                *ret_retry_after_sec = -1;
        if (q->n_domains == 0)
                return errorf(ret_error, -EINVAL, "No domain to ask a certificate for");
        a.jwk = jwk_json(q->account_key);
        if (!a.jwk)
                return errorf(ret_error, -EINVAL, "The ACME account key is not an ECDSA P-256 key");
        r = obtain(&a, ret_chain_pem, ret_key_pem);
        if (r < 0 && ret_retry_after_sec)
                *ret_retry_after_sec = a.retry_after;
        return r;
}
