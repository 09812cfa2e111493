// SPDX-License-Identifier: LGPL-2.1-or-later
/* Unit tests for HTTP/1.1 head parsing. */

#include "http1.h"
#include "tests.h"

static void test_request(void) {
        const char *req = "GET /connect?x=1 HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n"
                          "X-Empty:\r\nAuthorization: Bearer abc\r\n\r\nLEFTOVER";
        HttpHead *h = NULL;
        ssize_t end = http_head_end(req, strlen(req), 8192);

        CHECK(end > 0 && strcmp(req + end, "LEFTOVER") == 0, "head end at %zd", end);
        CHECK(http_head_parse(req, (size_t) end, true, 64, &h) == 0, "parse");
        if (!h)
                return;
        CHECK_STR(h->method, "GET");
        CHECK_STR(h->url, "/connect?x=1");
        CHECK(h->upgrade, "upgrade flag");
        CHECK_STR(http_head_get(h, "upgrade"), "websocket");
        CHECK_STR(http_head_get(h, "X-Empty"), "");
        CHECK(http_header_has_token(http_head_get(h, "Connection"), "upgrade"), "Connection token list");
        CHECK(!http_header_has_token("upgraded", "upgrade"), "no prefix match");
        CHECK(http_head_count(h, "authorization") == 1, "count");
        http_head_free(h);
}

static void test_response(void) {
        const char *r = "HTTP/1.1 401 Unauthorized\r\nContent-Length: 5\r\n\r\n";
        HttpHead *h = NULL;
        CHECK(http_head_parse(r, strlen(r), false, 64, &h) == 0 && h && h->status == 401, "401 response");
        http_head_free(h);
}

static void test_bad(void) {
        HttpHead *h = NULL;
        char many[8192];
        size_t o;

        CHECK(http_head_parse("GARBAGE\r\n\r\n", 11, true, 64, &h) == -EBADMSG, "garbage");
        CHECK(http_head_parse("GET / HTTP/1.1\r\nBad Header\r\n\r\n", 30, true, 64, &h) == -EBADMSG, "no colon");
        o = (size_t) snprintf(many, sizeof(many), "GET / HTTP/1.1\r\n");
        for (int i = 0; i < 100; i++)
                o += (size_t) snprintf(many + o, sizeof(many) - o, "H%d: v\r\n", i);
        o += (size_t) snprintf(many + o, sizeof(many) - o, "\r\n");
        CHECK(http_head_parse(many, o, true, 64, &h) == -E2BIG, "too many headers");
        CHECK(http_head_end("GET / HTTP/1.1\r\nA: b\r\n", 23, 10) == -E2BIG, "no end within max");
        CHECK(http_head_end("GET / HTTP/1.1\r\n", 16, 8192) == 0, "incomplete");
}

int main(void) {
        test_request();
        test_response();
        test_bad();
        return tests_finish("test-http1");
}
