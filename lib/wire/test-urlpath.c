// SPDX-License-Identifier: LGPL-2.1-or-later
/* Unit tests for urlpath.c: request targets to relative paths (normalisation, "..", %-escapes,
 * hidden names, what is refused), and the two escapers the directory listing uses. */

#include <stdio.h>

#include "macro.h"
#include "tests.h"
#include "urlpath.h"

static void expect_path(const char *target, bool hidden, const char *path, bool dir) {
        _cleanup_free_ char *p = NULL;
        bool d = !dir;
        int r = url_path_resolve(target, hidden, &p, &d);
        CHECK(r == 0, "'%s': expected success, got %d", target, r);
        CHECK_STR(p, path);
        CHECK(d == dir, "'%s': expected dir=%d, got %d", target, dir, d);
}

static void expect_refused(const char *target, bool hidden, int code) {
        char *p = NULL;
        int r = url_path_resolve(target, hidden, &p, NULL);
        CHECK(r == code, "'%s': expected %d, got %d", target, code, r);
        CHECK(!p, "'%s': no path on failure", target);
        free(p);
}

static void test_normalisation(void) {
        expect_path("/", false, ".", true);
        expect_path("/a", false, "a", false);
        expect_path("/a/b/", false, "a/b", true);
        expect_path("//a///b", false, "a/b", false);
        expect_path("/a/b?x=1/../..", false, "a/b", false);
        expect_path("/a/#frag", false, "a", true);
        expect_path("/?q", false, ".", true);
        expect_path("/a.b/c..d/x...", false, "a.b/c..d/x...", false);
        printf("urlpath: slashes collapsed, query and fragment dropped, trailing slash is a directory\n");
}

static void test_dot_segments(void) {
        expect_refused("/..", false, -EINVAL);
        expect_refused("/a/../b", false, -EINVAL);
        expect_refused("/a/./b", false, -EINVAL);
        expect_refused("/a/..", true, -EINVAL);
        expect_refused("/%2e%2e/etc", false, -EINVAL);
        expect_refused("/%2E./x", true, -EINVAL);
        printf("urlpath: '.' and '..' segments refused, escaped or not\n");
}

static void test_hidden(void) {
        expect_refused("/.git/config", false, -EACCES);
        expect_refused("/a/.env", false, -EACCES);
        expect_refused("/%2eenv", false, -EACCES);
        expect_refused("/...x", false, -EACCES);
        expect_path("/.well-known/x", true, ".well-known/x", false);
        expect_path("/a/.env", true, "a/.env", false);
        printf("urlpath: names starting with '.' only with allow_hidden\n");
}

static void test_escapes(void) {
        expect_path("/a%20b", false, "a b", false);
        expect_path("/%41%62c", false, "Abc", false);
        expect_path("/%c3%a9t%C3%A9", false, "\xc3\xa9t\xc3\xa9", false);
        expect_path("/a+b", false, "a+b", false);
        expect_refused("/a%2fb", false, -EINVAL);   /* an encoded '/' cannot make a separator */
        expect_refused("/a%2Fb", false, -EINVAL);
        expect_refused("/a%5cb", false, -EINVAL);   /* nor '\' */
        expect_refused("/a%00b", false, -EINVAL);
        expect_refused("/a%0ab", false, -EINVAL);   /* control bytes */
        expect_refused("/a%7f", false, -EINVAL);
        expect_refused("/a%", false, -EINVAL);      /* cut escapes */
        expect_refused("/a%4", false, -EINVAL);
        expect_refused("/a%zz", false, -EINVAL);
        expect_refused("/a%4?x", false, -EINVAL);   /* the escape may not reach into the query */
        printf("urlpath: %%-escapes decoded per segment; "
               "'/', '\\', NUL, control bytes and bad escapes refused\n");
}

static void test_bad_input(void) {
        char big[5000];

        expect_refused("", false, -EINVAL);
        expect_refused("a/b", false, -EINVAL);
        expect_refused("http://x/a", false, -EINVAL);
        expect_refused("*", false, -EINVAL);
        expect_refused("/a\tb", false, -EINVAL);
        expect_refused("/a\x7f", false, -EINVAL);
        big[0] = '/';
        memset(big + 1, 'a', sizeof(big) - 2);
        big[sizeof(big) - 1] = 0;
        expect_refused(big, false, -ENAMETOOLONG);
        /* 4096 bytes before the query is still accepted. */
        big[4096] = '?';
        {
                _cleanup_free_ char *p = NULL;
                CHECK(url_path_resolve(big, false, &p, NULL) == 0 && p && strlen(p) == 4095,
                      "a 4096-byte path resolves");
        }
        printf("urlpath: only origin-form targets up to 4096 bytes\n");
}

static void test_escapers(void) {
        _cleanup_free_ char *a = url_escape_segment("a b/ü~._-"), *b = url_escape_segment(""),
                            *h = html_escape("<a href=\"x\">&'</a>"), *e = html_escape("");
        CHECK_STR(a, "a%20b%2F%C3%BC~._-");
        CHECK_STR(b, "");
        CHECK_STR(h, "&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;");
        CHECK_STR(e, "");
        printf("urlpath: url_escape_segment() and html_escape()\n");
}

int main(void) {
        test_normalisation();
        test_dot_segments();
        test_hidden();
        test_escapes();
        test_bad_input();
        test_escapers();
        return tests_finish("test-urlpath");
}
