// SPDX-License-Identifier: LGPL-2.1-or-later
/* Unit tests for the ACME client's pure parts: renewal time, tokens, the parsers, the problem
 * text, base64url, and an ES256 key's JWK thumbprint (stable, 43 characters). The protocol
 * itself is tested against pebble (tests/test-acme.py). */

#include <gnutls/crypto.h>
#include <unistd.h>

#include "acme.h"
#include "encoding.h"
#include "tests.h"

#define DAY (24 * 3600ULL)

static void test_renew_time(void) {
        CHECK(acme_renew_time(0, 90 * DAY) == 60 * DAY, "90 days: 30 days before");
        CHECK(acme_renew_time(0, 5 * 365 * DAY) == 5 * 365 * DAY - 30 * DAY, "years: 30 days before");
        CHECK(acme_renew_time(1000, 1000 + 6 * DAY) == 1000 + 4 * DAY, "6 days: at two thirds");
        CHECK(acme_renew_time(100, 50) == 50, "nonsense dates: at expiry");
}

static void test_tokens(void) {
        CHECK(acme_token_is_valid("DGyRejmCefe7v4NfDGDKfA", 22), "base64url");
        CHECK(!acme_token_is_valid("../x", 4), "slash");
        CHECK(!acme_token_is_valid("a.b", 3), "dot");
        CHECK(!acme_token_is_valid("", 0), "empty");
        char *s = base64url_mem("\xfb\xff\xfe", 3);
        CHECK_STR(s, "-__-");
        free(s);
        s = base64url_mem("a", 1);
        CHECK_STR(s, "YQ"); /* no padding */
        free(s);
}

static void test_parsers(void) {
        const char *dir = "{\"newNonce\":\"n\",\"newAccount\":\"a\",\"newOrder\":\"o\"}";
        const char *authz = "{\"status\":\"pending\",\"identifier\":{\"type\":\"dns\",\"value\":\"a.test\"},"
                            "\"challenges\":[{\"type\":\"dns-01\",\"url\":\"d\",\"token\":\"t\"},"
                            "{\"type\":\"http-01\",\"url\":\"h\",\"token\":\"tok_1\",\"status\":\"invalid\","
                            "\"error\":{\"type\":\"urn:ietf:params:acme:error:connection\",\"detail\":\"refused\"}}]}";
        const char *order = "{\"status\":\"ready\",\"finalize\":\"f\",\"authorizations\":[\"z1\",\"z2\"]}";
        AcmeDirectory d = {};
        AcmeAuthz z = {};
        AcmeOrder o = {};
        char *p;

        CHECK(acme_parse_directory(dir, strlen(dir), &d) == 0, "directory");
        CHECK_STR(d.new_order, "o");
        acme_directory_done(&d);
        CHECK(acme_parse_directory("{\"newNonce\":\"n\"}", 16, &d) < 0, "incomplete directory");
        CHECK(acme_parse_directory("[1]", 3, &d) < 0, "not an object");
        CHECK(acme_parse_authz(authz, strlen(authz), &z) == 0, "authz");
        CHECK_STR(z.challenge_url, "h");
        CHECK_STR(z.token, "tok_1");
        CHECK_STR(z.error, "connection: refused");
        acme_authz_done(&z);
        CHECK(acme_parse_order(order, strlen(order), &o) == 0 && o.n_authorizations == 2, "order");
        CHECK_STR(o.authorizations[1], "z2");
        acme_order_done(&o);
        const char *prob = "{\"type\":\"urn:ietf:params:acme:error:rateLimited\",\"detail\":\"too many\"}";
        p = acme_problem_string(prob, strlen(prob), 429);
        CHECK_STR(p, "rateLimited: too many (HTTP 429)");
        free(p);
        p = acme_problem_string("<html>", 6, 502);
        CHECK_STR(p, "error (HTTP 502)");
        free(p);
}

static void test_thumbprint(void) {
        char dir[] = "/tmp/test-acme-XXXXXX", path[64];
        gnutls_privkey_t k1 = NULL, k2 = NULL;
        char *t1 = NULL, *t2 = NULL, *err = NULL;

        if (!mkdtemp(dir))
                return;
        snprintf(path, sizeof(path), "%s/account.key", dir);
        CHECK(acme_account_key_load(path, &k1, &err) == 0, "made: %s", err ?: "");
        CHECK(acme_account_key_load(path, &k2, &err) == 0, "loaded again: %s", err ?: "");
        if (k1 && k2) {
                CHECK(acme_jwk_thumbprint(k1, &t1) == 0 && acme_jwk_thumbprint(k2, &t2) == 0, "thumbprints");
                CHECK(t1 && strlen(t1) == 43, "43 characters: %s", t1 ?: "");
                CHECK_STR(t1, t2);
        }
        free(t1);
        free(t2);
        if (k1)
                gnutls_privkey_deinit(k1);
        if (k2)
                gnutls_privkey_deinit(k2);
        free(err);
        unlink(path);
        rmdir(dir);
}

int main(void) {
        test_renew_time();
        test_tokens();
        test_parsers();
        test_thumbprint();
        return tests_finish("test-acme");
}
