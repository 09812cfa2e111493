// SPDX-License-Identifier: LGPL-2.1-or-later
/* Unit tests for HTTP credentials: htpasswd lines as Apache's htpasswd writes them (bcrypt,
 * SHA-256-crypt, SHA-512-crypt; yescrypt made here), the kinds refused and their messages,
 * every parse error with its line, bearer token files, and Authorization values. The hashes
 * below were made with Debian 12's htpasswd (-B, -5, -2, -m, -s, -d). */

#include <crypt.h>
#include <string.h>

#include "httpcred.h"
#include "macro.h"
#include "tests.h"

#define ALICE "alice:$2y$05$CKUR9rZRum3eyFdyZkRnoumUIvCPvlNM2a5qThyV3srUUE3pxovYa" /* "wonder land" */
#define BOB "bob:$6$fqUBt7WoCNFP9Ndh$RgZRQrEqS41C1l8RIfqhtF5ZYOK6fEbALzpNBqtLmN0z2PxEMp.nXE.DvGXYhj1mUcJEKx1VERe7kBTXZQRPf/" /* "b0b:pw" */
#define CAROL "carol:$5$cG5AEdZ1aEOQlHmm$NsPjpD6tTF3PjXjUfOM9bNBpUxR1dhYrIKM9buZqTm4" /* "c" */

static int verify(const Htpasswd *h, const char *user, const char *password) {
        return htpasswd_verify(h, user, strlen(user), password, strlen(password));
}

static void expect_refused(const char *data, const char *message) {
        _cleanup_(htpasswd_freep) Htpasswd *h = NULL;
        _cleanup_free_ char *err = NULL;
        int r = htpasswd_parse(data, strlen(data), "users", &h, &err);

        CHECK(r < 0 && !h, "'%s': expected a refusal", data);
        CHECK_CONTAINS(err, message);
        /* The hash never appears in a message. */
        CHECK(!err || (!strstr(err, "$2y$05$CKUR") && !strstr(err, "1iuJ4DWm")), "hash in '%s'", err);
}

static void test_htpasswd(void) {
        _cleanup_(htpasswd_freep) Htpasswd *h = NULL;
        _cleanup_free_ char *err = NULL, *yes = NULL;
        static const char file[] = "# made by htpasswd\n" ALICE "\r\n\n" BOB "  \n" CAROL;
        int r = htpasswd_parse(file, strlen(file), "users", &h, &err);

        CHECK(r == 0, "parse: %s", err ?: "");
        if (r < 0)
                return;
        CHECK(htpasswd_users(h) == 3, "three users, got %zu", htpasswd_users(h));
        CHECK(verify(h, "alice", "wonder land") == 1, "bcrypt right");
        CHECK(verify(h, "alice", "wonder lanD") == 0, "bcrypt wrong");
        CHECK(verify(h, "bob", "b0b:pw") == 1, "SHA-512-crypt right (a colon in the password)");
        CHECK(verify(h, "bob", "b0b") == 0, "SHA-512-crypt wrong");
        CHECK(verify(h, "carol", "c") == 1, "SHA-256-crypt right");
        CHECK(verify(h, "carol", "") == 0, "empty password");
        CHECK(verify(h, "mallory", "wonder land") == 0, "unknown user");
        CHECK(verify(h, "Alice", "wonder land") == 0, "user names are exact");
        CHECK(verify(h, "alic", "wonder land") == 0, "a prefix of a user");
        CHECK(htpasswd_verify(h, "alice", 5, "wonder land\0x", 13) == 0, "a NUL in the password");
        {
                char big[HTTP_PASSWORD_MAX + 2];
                memset(big, 'a', sizeof(big) - 1);
                big[sizeof(big) - 1] = 0;
                CHECK(verify(h, "alice", big) == 0, "an overlong password");
        }

        /* yescrypt, made here with this system's libcrypt. */
        {
                struct crypt_data cd = {};
                char setting[CRYPT_GENSALT_OUTPUT_SIZE];
                const char *hash;
                _cleanup_(htpasswd_freep) Htpasswd *y = NULL;

                CHECK(crypt_gensalt_rn("$y$", 0, NULL, 0, setting, sizeof(setting)) != NULL, "gensalt");
                hash = crypt_r("yes pw", setting, &cd);
                CHECK(hash && hash[0] == '$', "yescrypt hash");
                if (hash && asprintf(&yes, "gina:%s\n", hash) > 0) {
                        r = htpasswd_parse(yes, strlen(yes), "y", &y, &err);
                        CHECK(r == 0, "yescrypt: %s", err ?: "");
                        CHECK(y && verify(y, "gina", "yes pw") == 1 && verify(y, "gina", "no") == 0, "yescrypt");
                }
        }
        printf("test-httpcred: htpasswd with bcrypt, SHA-512/256-crypt, yescrypt\n");
}

static void test_htpasswd_refusals(void) {
        expect_refused("dave:$apr1$1iuJ4DWm$Hj5fZht5bF0Na6AjhR4120\n",
                       "users:1: user dave: $apr1$ (Apache MD5) hashes are not supported; make the file with "
                       "htpasswd -B");
        expect_refused(ALICE "\nerin:{SHA}GpHWL3ymc5liWkNopqtdSjuqYHM=\n", "users:2: user erin: {SHA} hashes");
        expect_refused("frank:BexvGfQCqlB6A\n", "users:1: user frank: plain-text and DES crypt");
        expect_refused("md5:$1$uX3X78m2$BC0taPQKcS8Jwf1Zki1vz.\n", "users:1: user md5: this hash method is too weak");
        expect_refused("x:$9$nonsense\n", "users:1: user x: not a hash this system's crypt() verifies");
        expect_refused("# only a comment\n\n", "users: no users in the file");
        expect_refused("", "users: no users in the file");
        expect_refused(ALICE "\nno colon here\n", "users:2: expected USER:HASH");
        expect_refused(":$2y$05$CKUR9rZRum3eyFdyZkRnoumUIvCPvlNM2a5qThyV3srUUE3pxovYa\n", "users:1: expected USER:HASH");
        expect_refused("a\tb:$2y$05$CKUR9rZRum3eyFdyZkRnoumUIvCPvlNM2a5qThyV3srUUE3pxovYa\n", "users:1: expected");
        expect_refused(ALICE "\n" ALICE "\n", "users:2: user alice is in the file twice");
        {
                char *long_line = malloc(HTPASSWD_LINE_MAX + 64);
                if (!long_line)
                        abort();
                memset(long_line, 'a', HTPASSWD_LINE_MAX + 10);
                strcpy(long_line + HTPASSWD_LINE_MAX + 10, ":x\n");
                expect_refused(long_line, "users:1: line longer than 4096 bytes");
                free(long_line);
        }
        {
                static const char nul[] = "alice:$2y$05$CKUR9rZRum3eyF\0dyZkRnoumUIvCPvlNM2a5qThyV3srUUE3pxovYa\n";
                _cleanup_(htpasswd_freep) Htpasswd *h = NULL;
                _cleanup_free_ char *err = NULL;
                CHECK(htpasswd_parse(nul, sizeof(nul) - 1, "users", &h, &err) < 0, "a NUL byte");
                CHECK_CONTAINS(err, "users:1: NUL byte");
        }
        {
                _cleanup_(htpasswd_freep) Htpasswd *h = NULL;
                _cleanup_free_ char *err = NULL;
                CHECK(htpasswd_load("/nonexistent/htpasswd", &h, &err) == -ENOENT, "missing file");
                CHECK_CONTAINS(err, "/nonexistent/htpasswd: No such file");
                free(err);
                err = NULL;
                CHECK(htpasswd_load("/", &h, &err) == -EINVAL, "a directory");
                CHECK_CONTAINS(err, "/: not a regular file");
        }
        printf("test-httpcred: refused: $apr1$, {SHA}, DES, MD5-crypt, unknown, empty, malformed, long, "
               "duplicate, NUL, missing, directory\n");
}

static void test_bearer(void) {
        _cleanup_(bearer_tokens_freep) BearerTokens *b = NULL;
        _cleanup_free_ char *err = NULL;
        static const char file[] = "# tokens\nAAAAAAAAAAAAAAAAAAAAAAAA \r\n\nbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\n";
        int r = bearer_tokens_parse(file, strlen(file), "tokens", &b, &err);

        CHECK(r == 0, "parse: %s", err ?: "");
        CHECK(b && bearer_tokens_match(b, "AAAAAAAAAAAAAAAAAAAAAAAA", 24), "first token");
        CHECK(b && bearer_tokens_match(b, "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", 37), "second token");
        CHECK(b && !bearer_tokens_match(b, "AAAAAAAAAAAAAAAAAAAAAAA", 23), "a prefix");
        CHECK(b && !bearer_tokens_match(b, "AAAAAAAAAAAAAAAAAAAAAAAA ", 25), "with a space");
        CHECK(b && !bearer_tokens_match(b, "", 0), "empty");

        static const struct { const char *data, *message; } bad[] = {
                { "short\n", "tokens:1: a token must be 16 to 2048 bytes long" },
                { "AAAAAAAAAAAAAAAAAAAA\nwith space inside 0123\n", "tokens:2: a token is printable ASCII" },
                { "# none\n", "tokens: no tokens in the file" },
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                _cleanup_(bearer_tokens_freep) BearerTokens *x = NULL;
                _cleanup_free_ char *e = NULL;
                CHECK(bearer_tokens_parse(bad[i].data, strlen(bad[i].data), "tokens", &x, &e) < 0 && !x, "%s",
                      bad[i].data);
                CHECK_CONTAINS(e, bad[i].message);
        }
        printf("test-httpcred: bearer token files\n");
}

static void test_authorization(void) {
        static const struct {
                const char *value;
                int scheme; /* -1: refused */
                const char *a, *b;
        } cases[] = {
                { "Basic YWxpY2U6d29uZGVyIGxhbmQ=", HTTP_AUTH_BASIC, "alice", "wonder land" },
                { "basic   YWxpY2U6d29uZGVyIGxhbmQ= ", HTTP_AUTH_BASIC, "alice", "wonder land" },
                { "BASIC\tYm9iOmIwYjpwdw==", HTTP_AUTH_BASIC, "bob", "b0b:pw" }, /* first colon splits */
                { "Basic OnB3", HTTP_AUTH_BASIC, "", "pw" },
                { "Basic YWxpY2U=", -1, NULL, NULL },                    /* no colon */
                { "Basic YWxpY2U6d29uZGVyIGxhbmQ", -1, NULL, NULL },     /* not padded */
                { "Basic !!!!", -1, NULL, NULL },
                { "Basic", -1, NULL, NULL },
                { "Basic ", -1, NULL, NULL },
                { "Basic YWxp Y2U6", -1, NULL, NULL },
                { "Bearer abc.DEF-123_~+/=", HTTP_AUTH_BEARER, "abc.DEF-123_~+/=", NULL },
                { "bearer x", HTTP_AUTH_BEARER, "x", NULL },
                { "Bearer a b", -1, NULL, NULL },
                { "Digest username=\"a\"", -1, NULL, NULL },
                { "", -1, NULL, NULL },
                { "YWxpY2U6d29uZGVy", -1, NULL, NULL },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_(http_credentials_done) HttpCredentials c = {};
                int r = http_authorization_parse(cases[i].value, strlen(cases[i].value), &c);
                if (cases[i].scheme < 0) {
                        CHECK(r == -EBADMSG, "'%s': expected -EBADMSG, got %d", cases[i].value, r);
                        continue;
                }
                CHECK(r == 0 && (int) c.scheme == cases[i].scheme, "'%s': %d", cases[i].value, r);
                if (r < 0)
                        continue;
                if (c.scheme == HTTP_AUTH_BASIC)
                        CHECK(c.user_len == strlen(cases[i].a) && memcmp(c.user, cases[i].a, c.user_len) == 0 &&
                              c.password_len == strlen(cases[i].b) &&
                              memcmp(c.password, cases[i].b, c.password_len) == 0, "'%s': user/password",
                              cases[i].value);
                else
                        CHECK(c.token_len == strlen(cases[i].a) && memcmp(c.token, cases[i].a, c.token_len) == 0,
                              "'%s': token", cases[i].value);
        }
        {
                /* Over the bound: refused before decoding. */
                char *v = malloc(4000);
                if (!v)
                        abort();
                strcpy(v, "Basic ");
                memset(v + 6, 'A', 3000);
                v[3006] = 0;
                HttpCredentials c = {};
                CHECK(http_authorization_parse(v, strlen(v), &c) == -EBADMSG, "overlong Basic");
                free(v);
        }
        printf("test-httpcred: Authorization values\n");
}

int main(void) {
        test_htpasswd();
        test_htpasswd_refusals();
        test_bearer();
        test_authorization();
        return tests_finish("test-httpcred");
}
