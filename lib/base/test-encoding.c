// SPDX-License-Identifier: LGPL-2.1-or-later
/* Unit tests for encoding: hex, base64 and base64url against the RFC 4648 §10 test vectors,
 * and the decoders on input they must refuse. */

#include "encoding.h"
#include "macro.h"
#include "tests.h"

/* RFC 4648 §10: BASE64, BASE16 (hexmem prints lower case) and, unpadded, BASE64URL. */
static const struct {
        const char *in, *b64, *hex, *b64url;
} vectors[] = {
        { "", "", "", "" },
        { "f", "Zg==", "66", "Zg" },
        { "fo", "Zm8=", "666f", "Zm8" },
        { "foo", "Zm9v", "666f6f", "Zm9v" },
        { "foob", "Zm9vYg==", "666f6f62", "Zm9vYg" },
        { "fooba", "Zm9vYmE=", "666f6f6261", "Zm9vYmE" },
        { "foobar", "Zm9vYmFy", "666f6f626172", "Zm9vYmFy" },
};

static void test_rfc4648_vectors(void) {
        for (size_t i = 0; i < ELEMENTSOF(vectors); i++) {
                size_t n = strlen(vectors[i].in), len = 0;
                _cleanup_free_ char *b64 = base64mem(vectors[i].in, n);
                _cleanup_free_ char *hex = hexmem(vectors[i].in, n);
                _cleanup_free_ char *url = base64url_mem(vectors[i].in, n);
                _cleanup_free_ char *dec = NULL;
                uint8_t raw[8] = {};

                CHECK_STR(b64, vectors[i].b64);
                CHECK_STR(hex, vectors[i].hex);
                CHECK_STR(url, vectors[i].b64url);
                CHECK(unbase64mem(vectors[i].b64, &dec, &len) == 0, "'%s' did not decode", vectors[i].b64);
                CHECK(dec && len == n && memcmp(dec, vectors[i].in, n) == 0 && dec[n] == 0,
                      "'%s': expected '%s', got '%s' (%zu bytes)", vectors[i].b64, vectors[i].in,
                      dec ?: "(null)", len);
                CHECK(unhexmem(vectors[i].hex, raw, n) == 0 && memcmp(raw, vectors[i].in, n) == 0,
                      "'%s' did not decode to '%s'", vectors[i].hex, vectors[i].in);
        }
        printf("RFC 4648 vectors: %zu each for base64, base16, base64url, and back\n", ELEMENTSOF(vectors));
}

static void test_base64url_alphabet(void) {
        static const uint8_t b[] = { 0xfb, 0xff, 0xbf };
        _cleanup_free_ char *std = base64mem(b, sizeof(b)), *url = base64url_mem(b, sizeof(b));
        _cleanup_free_ char *std2 = base64mem(b, 2), *url2 = base64url_mem(b, 2);

        CHECK_STR(std, "+/+/");
        CHECK_STR(url, "-_-_");
        CHECK_STR(std2, "+/8=");
        CHECK_STR(url2, "-_8");
        printf("base64url: '+' '/' become '-' '_', padding dropped\n");
}

static void test_unhex(void) {
        static const uint8_t want[] = { 0xab, 0x12, 0xcd, 0xef };
        static const char *const bad[] = {
                "ab12cde",    /* odd length */
                "ab12cdeg",   /* not hex */
                "ab12cd",     /* too short */
                "ab12cdef00", /* too long */
                "ab 12cdef",  /* space */
                "0xab12cdef", /* prefix */
                "AB:12:CD:E", /* odd digit at the end */
        };
        uint8_t b[4];

        CHECK(unhexmem("ab12cdef", b, sizeof(b)) == 0 && memcmp(b, want, 4) == 0, "plain hex");
        CHECK(unhexmem("AB12CDEF", b, sizeof(b)) == 0 && memcmp(b, want, 4) == 0, "upper case");
        CHECK(unhexmem("AB:12:CD:EF", b, sizeof(b)) == 0 && memcmp(b, want, 4) == 0, "colons");
        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                CHECK(unhexmem(bad[i], b, sizeof(b)) == -EINVAL, "'%s' accepted", bad[i]);
        CHECK(unhexchar('0') == 0 && unhexchar('9') == 9 && unhexchar('a') == 10 && unhexchar('F') == 15,
              "unhexchar digits");
        CHECK(unhexchar('g') == -EINVAL && unhexchar(':') == -EINVAL && unhexchar(0) == -EINVAL,
              "unhexchar non-digits");
        printf("unhexmem: lower, upper, colon-separated; %zu malformed inputs refused\n", ELEMENTSOF(bad));
}

static void test_unbase64_bad(void) {
        static const char *const bad[] = {
                "Zg=",      /* not a multiple of 4 */
                "Zg",       /* unpadded */
                "Z===",     /* padding too early */
                "Zg==Zg==", /* data after padding */
                "Zm9v-_8=", /* base64url alphabet */
                "Zm9v\n",   /* line break */
                "Zm 9",     /* space */
        };

        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                _cleanup_free_ char *dec = NULL;
                CHECK(unbase64mem(bad[i], &dec, NULL) == -EINVAL, "'%s' accepted", bad[i]);
                CHECK(!dec, "'%s': *ret written on failure", bad[i]);
        }

        /* Binary bytes round-trip, NULs included. */
        uint8_t all[256];
        for (size_t i = 0; i < sizeof(all); i++)
                all[i] = (uint8_t) i;
        _cleanup_free_ char *enc = base64mem(all, sizeof(all)), *dec = NULL;
        size_t len = 0;
        CHECK(enc && unbase64mem(enc, &dec, &len) == 0 && len == sizeof(all) && memcmp(dec, all, len) == 0,
              "256 byte values did not round-trip");
        printf("unbase64mem: %zu malformed inputs refused; all 256 byte values round-trip\n",
               ELEMENTSOF(bad));
}

int main(void) {
        test_rfc4648_vectors();
        test_base64url_alphabet();
        test_unhex();
        test_unbase64_bad();
        return tests_finish("test-encoding");
}
