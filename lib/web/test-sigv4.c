// SPDX-License-Identifier: LGPL-2.1-or-later
/* SigV4 against AWS's published test suite (aws-sig-v4-test-suite: the example credentials
 * AKIDEXAMPLE / wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY, us-east-1, service "service",
 * 20150830T123600Z): each vector's signature, and some canonical requests whole. Headers are
 * given in another order and case than the suite's, which must not matter. */

#include <string.h>

#include "macro.h"
#include "sigv4.h"
#include "string-util.h"
#include "tests.h"

#define DATE "20150830T123600Z"
#define HOST "example.amazonaws.com"
#define EMPTY_SHA "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define STS_TOKEN                                                                                            \
        "AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSPfIeoIYRq" \
        "TflfKD8YUuwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7WZ0wq5VSXDvp75YU9" \
        "HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvK" \
        "Tr4rvx3iSIlTJabIQwj2ICCR/oLxBA=="

typedef struct Vector {
        const char *name, *method, *path, *query, *body;
        SigV4Header extra[2];          /* besides host and x-amz-date */
        const char *signed_headers, *signature;
        const char *canonical;         /* NULL: not checked whole */
} Vector;

static const Vector vectors[] = {
        { "get-vanilla", "GET", "/", NULL, NULL, {}, "host;x-amz-date",
          "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
          "GET\n/\n\nhost:" HOST "\nx-amz-date:" DATE "\n\nhost;x-amz-date\n" EMPTY_SHA },
        { "get-header-key-duplicate", "GET", "/", NULL, NULL, { { "My-Header1", "value2,value2,value1" } },
          "host;my-header1;x-amz-date", "c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea" },
        { "get-header-value-order", "GET", "/", NULL, NULL, { { "my-header1", "value4,value1,value3,value2" } },
          "host;my-header1;x-amz-date", "08c7e5a9acfcfeb3ab6b2185e75ce8b1deb5e634ec47601a50643f830c755c01" },
        { "get-header-value-trim", "GET", "/", NULL, NULL,
          { { "my-header1", " value1" }, { "my-header2", " \"a   b   c\"" } }, "host;my-header1;my-header2;x-amz-date",
          "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736",
          "GET\n/\n\nhost:" HOST "\nmy-header1:value1\nmy-header2:\"a b c\"\nx-amz-date:" DATE
          "\n\nhost;my-header1;my-header2;x-amz-date\n" EMPTY_SHA },
        { "get-unreserved", "GET", "/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", NULL, NULL, {},
          "host;x-amz-date", "07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f" },
        { "get-utf8", "GET", "/\xe1\x88\xb4", NULL, NULL, {}, "host;x-amz-date",
          "8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85",
          "GET\n/%E1%88%B4\n\nhost:" HOST "\nx-amz-date:" DATE "\n\nhost;x-amz-date\n" EMPTY_SHA },
        { "get-vanilla-empty-query-key", "GET", "/", "Param1=value1", NULL, {}, "host;x-amz-date",
          "a67d582fa61cc504c4bae71f336f98b97f1ea3c7a6bfe1b6e45aec72011b9aeb" },
        { "get-vanilla-query-order-key", "GET", "/", "Param1=value2&Param1=Value1", NULL, {}, "host;x-amz-date",
          "eedbc4e291e521cf13422ffca22be7d2eb8146eecf653089df300a15b2382bd1",
          "GET\n/\nParam1=Value1&Param1=value2\nhost:" HOST "\nx-amz-date:" DATE "\n\nhost;x-amz-date\n" EMPTY_SHA },
        { "get-vanilla-query-order-key-case", "GET", "/", "Param2=value2&Param1=value1", NULL, {}, "host;x-amz-date",
          "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500" },
        { "get-vanilla-query-order-value", "GET", "/", "Param1=value2&Param1=value1", NULL, {}, "host;x-amz-date",
          "5772eed61e12b33fae39ee5e7012498b51d56abc0abb7c60486157bd471c4694" },
        { "get-vanilla-query-unreserved", "GET", "/",
          "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz="
          "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
          NULL, {}, "host;x-amz-date", "9c3e54bfcdf0b19771a7f523ee5669cdf59bc7cc0884027167c21bb143a40197" },
        { "get-vanilla-utf8-query", "GET", "/", "\xe1\x88\xb4=bar", NULL, {}, "host;x-amz-date",
          "2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04" },
        { "normalize-path/get-relative", "GET", "/example/..", NULL, NULL, {}, "host;x-amz-date",
          "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31" },
        { "normalize-path/get-relative-relative", "GET", "/example1/example2/../..", NULL, NULL, {}, "host;x-amz-date",
          "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31" },
        { "normalize-path/get-slash", "GET", "//", NULL, NULL, {}, "host;x-amz-date",
          "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31" },
        { "normalize-path/get-slash-dot-slash", "GET", "/./", NULL, NULL, {}, "host;x-amz-date",
          "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31" },
        { "normalize-path/get-slash-pointless-dot", "GET", "/./example", NULL, NULL, {}, "host;x-amz-date",
          "ef75d96142cf21edca26f06005da7988e4f8dc83a165a80865db7089db637ec5" },
        { "normalize-path/get-slashes", "GET", "//example//", NULL, NULL, {}, "host;x-amz-date",
          "9a624bd73a37c9a373b5312afbebe7a714a789de108f0bdfe846570885f57e84",
          "GET\n/example/\n\nhost:" HOST "\nx-amz-date:" DATE "\n\nhost;x-amz-date\n" EMPTY_SHA },
        { "normalize-path/get-space", "GET", "/example space/", NULL, NULL, {}, "host;x-amz-date",
          "652487583200325589f1fba4c7e578f72c47cb61beeca81406b39ddec1366741" },
        { "post-vanilla", "POST", "/", NULL, NULL, {}, "host;x-amz-date",
          "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b" },
        { "post-header-key-sort", "POST", "/", NULL, NULL, { { "My-Header1", "value1" } }, "host;my-header1;x-amz-date",
          "c5410059b04c1ee005303aed430f6e6645f61f4dc9e1461ec8f8916fdf18852c" },
        { "post-header-value-case", "POST", "/", NULL, NULL, { { "my-header1", "VALUE1" } },
          "host;my-header1;x-amz-date", "cdbc9802e29d2942e5e10b5bccfdd67c5f22c7c4e8ae67b53629efa58b974b7d" },
        { "post-sts-token/post-sts-header-before", "POST", "/", NULL, NULL, { { "X-Amz-Security-Token", STS_TOKEN } },
          "host;x-amz-date;x-amz-security-token", "85d96828115b5dc0cfc3bd16ad9e210dd772bbebba041836c64533a82be05ead" },
        { "post-vanilla-query", "POST", "/", "Param1=value1", NULL, {}, "host;x-amz-date",
          "28038455d6de14eafc1f9222cf5aa6f1a96197d7deb8263271d420d138af7f11" },
        { "post-x-www-form-urlencoded", "POST", "/", NULL, "Param1=value1",
          { { "Content-Type", "application/x-www-form-urlencoded" } }, "content-type;host;x-amz-date",
          "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a",
          "POST\n/\n\ncontent-type:application/x-www-form-urlencoded\nhost:" HOST "\nx-amz-date:" DATE
          "\n\ncontent-type;host;x-amz-date\n9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e" },
        { "post-x-www-form-urlencoded-parameters", "POST", "/", NULL, "Param1=value1",
          { { "content-type", "application/x-www-form-urlencoded; charset=utf8" } }, "content-type;host;x-amz-date",
          "1a72ec8f64bd914b0e42e42607c7fbce7fb2c7465f63e3092b3b0d39fa77a6fe" },
};

static void test_vector(const Vector *v) {
        SigV4Header h[4] = { { "X-Amz-Date", DATE } };  /* out of order and in mixed case on purpose */
        size_t n = 1;
        _cleanup_free_ char *auth = NULL, *canonical = NULL, *sts = NULL, *want = NULL;

        for (size_t i = 0; i < ELEMENTSOF(v->extra) && v->extra[i].name; i++)
                h[n++] = v->extra[i];
        h[n++] = (SigV4Header) { "Host", HOST };
        SigV4Request q = {
                .method = v->method, .path = v->path, .query = v->query, .headers = h, .n_headers = n,
                .body = v->body, .body_len = v->body ? strlen(v->body) : 0, .amz_date = DATE,
                .region = "us-east-1", .service = "service", .access_key = "AKIDEXAMPLE",
                .secret_key = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        };
        CHECK(sigv4_sign(&q, &auth, &canonical, &sts) == 0, "%s: signed", v->name);
        want = asprintf_safe("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
                             "SignedHeaders=%s, Signature=%s", v->signed_headers, v->signature);
        CHECK(auth && want && streq(auth, want), "%s:\n  expected %s\n  got      %s\n  canonical:\n%s", v->name, want,
              auth ?: "(null)", canonical ?: "(null)");
        if (v->canonical)
                CHECK_STR(canonical, v->canonical);
        static const char sts_head[] = "AWS4-HMAC-SHA256\n" DATE "\n20150830/us-east-1/service/aws4_request\n";
        CHECK(sts && strncmp(sts, sts_head, sizeof sts_head - 1) == 0 && strlen(sts) == sizeof sts_head - 1 + 64,
              "%s: the string to sign: %s", v->name, sts ?: "(null)");
}

static void test_string_to_sign(void) {
        SigV4Header h[] = { { "host", HOST }, { "x-amz-date", DATE } };
        SigV4Request q = { .method = "GET", .path = "/", .headers = h, .n_headers = 2, .amz_date = DATE,
                           .region = "us-east-1", .service = "service", .access_key = "AKIDEXAMPLE",
                           .secret_key = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY" };
        _cleanup_free_ char *auth = NULL, *sts = NULL;
        CHECK(sigv4_sign(&q, &auth, NULL, &sts) == 0, "get-vanilla");
        CHECK_STR(sts, "AWS4-HMAC-SHA256\n" DATE "\n20150830/us-east-1/service/aws4_request\n"
                       "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63");
}

static void test_refusals(void) {
        char *auth = NULL;
        SigV4Request q = { .method = "GET", .path = "/", .amz_date = "2015", .region = "r", .service = "s",
                           .access_key = "a", .secret_key = "s" };
        CHECK(sigv4_sign(&q, &auth, NULL, NULL) == -EINVAL && !auth, "an amz_date that is not 16 characters");
        q.amz_date = DATE;
        q.secret_key = NULL;
        CHECK(sigv4_sign(&q, &auth, NULL, NULL) == -EINVAL && !auth, "no secret");
}

static void test_encode_and_date(void) {
        _cleanup_free_ char *a = sigv4_uri_encode("a b+c/d~é", strlen("a b+c/d~é"), 0);
        _cleanup_free_ char *b = sigv4_uri_encode("a/b", 3, 1);
        char buf[17];
        CHECK_STR(a, "a%20b%2Bc%2Fd~%C3%A9");
        CHECK_STR(b, "a/b");
        CHECK_STR(sigv4_amz_date(1440938160, buf), DATE);
        CHECK_STR(sigv4_amz_date(1709164800, buf), "20240229T000000Z");
}

int main(void) {
        for (size_t i = 0; i < ELEMENTSOF(vectors); i++)
                test_vector(&vectors[i]);
        test_string_to_sign();
        test_refusals();
        test_encode_and_date();
        return tests_finish("sigv4");
}
