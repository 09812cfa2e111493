// SPDX-License-Identifier: LGPL-2.1-or-later
/* Unit tests for HTTP/1.1 head parsing and writing. */

#include <stdarg.h>

#include "http1.h"
#include "macro.h"
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

/* ---- the streaming parser ---- */

/* A string literal as bytes and length, NULs inside included. */
#define LIT(s) (const uint8_t *) (s), sizeof(s) - 1

typedef struct Seen {
        unsigned heads, completes;
        char body[256];
        size_t body_len;
        HttpHead *last, *trailers;
        int head_return;
} Seen;

static int seen_head(void *userdata, HttpHead *h) {
        Seen *s = userdata;
        s->heads++;
        http_head_free(s->last);
        s->last = h;
        return s->head_return;
}

static int seen_body(void *userdata, const uint8_t *p, size_t n) {
        Seen *s = userdata;
        if (s->body_len + n < sizeof(s->body)) {
                memcpy(s->body + s->body_len, p, n);
                s->body_len += n;
        }
        return 0;
}

static int seen_complete(void *userdata, HttpHead *t) {
        Seen *s = userdata;
        s->completes++;
        http_head_free(s->trailers);
        s->trailers = t;
        return 0;
}

static const HttpMsgCallbacks seen_callbacks = { seen_head, seen_body, seen_complete };

static void seen_done(Seen *s) {
        http_head_free(s->last);
        http_head_free(s->trailers);
}

/* Feeds in pieces of `step` bytes, resuming after each complete message. */
static ssize_t feed_all(HttpMsgParser *mp, const char *in, size_t len, size_t step) {
        size_t off = 0;
        while (off < len) {
                size_t n = MIN(step, len - off);
                ssize_t r = http_msg_parser_feed(mp, (const uint8_t *) in + off, n);
                if (r < 0)
                        return r;
                off += (size_t) r;
                if (mp->complete)
                        http_msg_parser_next(mp);
                else if (mp->stopped)
                        break;
        }
        return (ssize_t) off;
}

static void test_stream(void) {
        const char *in = "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                         "5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Sum: 42\r\n\r\n"
                         "GET /b HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc";

        for (size_t step = 1; step <= 64; step *= 4) {
                HttpMsgParser mp;
                Seen s = {};
                http_msg_parser_init(&mp, true, 8192, 64, &seen_callbacks, &s);
                CHECK(feed_all(&mp, in, strlen(in), step) == (ssize_t) strlen(in), "all taken (step %zu)", step);
                CHECK(s.heads == 2 && s.completes == 2, "two messages (step %zu): %u %u", step, s.heads, s.completes);
                CHECK(s.body_len == 14 && memcmp(s.body, "hello worldabc", 14) == 0, "bodies (step %zu)", step);
                CHECK(s.last && s.last->content_length == 3 && s.last->keep_alive, "second head");
                http_msg_parser_done(&mp);
                seen_done(&s);
        }

        /* Trailers of the first message, seen at its end. */
        {
                HttpMsgParser mp;
                Seen s = {};
                http_msg_parser_init(&mp, true, 8192, 64, &seen_callbacks, &s);
                ssize_t r = http_msg_parser_feed(&mp, (const uint8_t *) in, strlen(in));
                CHECK(r > 0 && (size_t) r < strlen(in) && mp.complete, "stops after one message");
                CHECK(s.trailers && s.trailers->n_headers == 1, "one trailer");
                if (s.trailers && s.trailers->n_headers == 1)
                        CHECK_STR(http_head_get(s.trailers, "x-sum"), "42");
                CHECK(s.last && s.last->chunked, "chunked flag");
                http_msg_parser_done(&mp);
                seen_done(&s);
        }

        /* A response whose body ends with the connection; a 100 before the real one. */
        {
                const char *resp = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.0 200 OK\r\nA: b\r\n\r\nuntil eof";
                HttpMsgParser mp;
                Seen s = {};
                http_msg_parser_init(&mp, false, 8192, 64, &seen_callbacks, &s);
                CHECK(feed_all(&mp, resp, strlen(resp), 1000) == (ssize_t) strlen(resp), "response taken");
                CHECK(http_msg_parser_feed(&mp, NULL, 0) == 0 && s.completes == 2, "EOF completes it");
                CHECK(s.last && s.last->status == 200 && !s.last->keep_alive, "1.0 response");
                CHECK(s.body_len == 9, "close-delimited body %zu", s.body_len);
                http_msg_parser_done(&mp);
                seen_done(&s);
        }

        /* A HEAD response: the head callback says there is no body. */
        {
                const char *resp = "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n";
                HttpMsgParser mp;
                Seen s = { .head_return = 1 };
                http_msg_parser_init(&mp, false, 8192, 64, &seen_callbacks, &s);
                CHECK(feed_all(&mp, resp, strlen(resp), 1000) == (ssize_t) strlen(resp), "HEAD response taken");
                CHECK(s.completes == 2 && s.body_len == 0, "no body read");
                http_msg_parser_done(&mp);
                seen_done(&s);
        }

        /* Limits, a truncated message, a 101 that stops the parser. */
        {
                HttpMsgParser mp;
                Seen s = {};
                const char *big = "GET / HTTP/1.1\r\nX: 0123456789012345678901234567890123456789\r\n\r\n";
                http_msg_parser_init(&mp, true, 32, 64, &seen_callbacks, &s);
                CHECK(http_msg_parser_feed(&mp, (const uint8_t *) big, strlen(big)) == -E2BIG, "head bytes limit");
                http_msg_parser_done(&mp);
                http_msg_parser_init(&mp, true, 8192, 1, &seen_callbacks, &s);
                CHECK(http_msg_parser_feed(&mp, LIT("GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\n\r\n")) == -EMLINK,
                      "header count limit");
                http_msg_parser_done(&mp);
                http_msg_parser_init(&mp, true, 8192, 64, &seen_callbacks, &s);
                CHECK(http_msg_parser_feed(&mp, LIT("POST / HTTP/1.1\r\nContent-Length: 9\r\n\r\nabc")) > 0,
                      "partial body");
                CHECK(http_msg_parser_feed(&mp, NULL, 0) == -EPIPE, "EOF inside the body");
                http_msg_parser_done(&mp);
                http_msg_parser_init(&mp, true, 8192, 64, &seen_callbacks, &s);
                CHECK(http_msg_parser_feed(&mp, LIT("GET / HTTP/1.1\r\nHost: a\0b\r\n\r\n")) == -EBADMSG,
                      "NUL in a value");
                http_msg_parser_done(&mp);
                seen_done(&s);
        }
        {
                const char *resp = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\nRAW";
                HttpMsgParser mp;
                Seen s = { .head_return = 2 };
                http_msg_parser_init(&mp, false, 8192, 64, &seen_callbacks, &s);
                ssize_t r = http_msg_parser_feed(&mp, (const uint8_t *) resp, strlen(resp));
                CHECK(r == (ssize_t) strlen(resp) - 3 && mp.stopped, "stops at the raw bytes (%zd)", r);
                http_msg_parser_done(&mp);
                seen_done(&s);
        }
        CHECK_STR(http_status_reason(431), "Request Header Fields Too Large");
        CHECK_STR(http_status_reason(299), "Unknown");
}

/* Heads keep their strings in an arena: a head past the inline blocks (40 fields, values of 300
 * bytes), fed whole and byte by byte, comes out intact, and the arena stays in proportion. */
static void test_arena(void) {
        char in[16384], *p = in;
        size_t head_bytes = 0;

        p += sprintf(p, "GET /%0200d HTTP/1.1\r\nHost: x\r\n", 7);
        for (int i = 0; i < 40; i++) {
                p += sprintf(p, "X-Field-%d: ", i);
                for (int k = 0; k < 300; k++)
                        *p++ = (char) ('a' + (i + k) % 26);
                p += sprintf(p, "\r\n");
                head_bytes += 300 + 10;
        }
        p += sprintf(p, "\r\n");

        for (size_t step = 1; step <= 4096; step *= 8) {
                HttpMsgParser mp;
                Seen s = {};
                bool ok = true;
                http_msg_parser_init(&mp, true, 16384, 64, &seen_callbacks, &s);
                CHECK(feed_all(&mp, in, (size_t) (p - in), step) == p - in, "big head taken (step %zu)", step);
                CHECK(s.last && s.last->n_headers == 41, "41 fields (step %zu)", step);
                if (!s.last || s.last->n_headers != 41) {
                        http_msg_parser_done(&mp);
                        seen_done(&s);
                        continue;
                }
                CHECK(strlen(s.last->url) == 201 && s.last->url[0] == '/', "target (step %zu)", step);
                CHECK_STR(s.last->method, "GET");
                CHECK_STR(http_head_get(s.last, "host"), "x");
                for (int i = 0; i < 40; i++) {
                        char name[32];
                        const char *v;
                        snprintf(name, sizeof(name), "x-field-%d", i);
                        v = http_head_get(s.last, name);
                        ok = ok && v && strlen(v) == 300;
                        for (int k = 0; ok && k < 300; k++)
                                ok = v[k] == (char) ('a' + (i + k) % 26);
                }
                CHECK(ok, "every value intact (step %zu)", step);
                /* the blocks double: the last is at most four times what the head holds */
                CHECK(s.last->block_size <= 4 * (head_bytes + 512), "arena in proportion (step %zu): %zu",
                      step, s.last->block_size);
                CHECK(http_head_add(s.last, "Late", 4, "added", 5) == 0 && s.last->n_headers == 42, "added late");
                CHECK_STR(http_head_get(s.last, "late"), "added");
                http_msg_parser_done(&mp);
                seen_done(&s);
        }
}

#define S(s) s, sizeof(s) - 1
static void test_h2_fields(void) {
        HttpHead *h = http_head_new(false);
        CHECK(h, "new");
        if (!h)
                return;
        CHECK(http_head_add_h2(h, S(":status"), S("204")) == 0 && h->status == 204, ":status");
        CHECK(http_head_add_h2(h, S(":path"), S("/a")) == 0 && http_head_add_h2(h, S(":path"), S("/b")) == 0,
              ":path twice");
        CHECK_STR(h->url, "/a");
        CHECK(http_head_add_h2(h, S(":authority"), S("x.example")) == 0, ":authority");
        CHECK_STR(h->authority, "x.example");
        CHECK(http_head_add_h2(h, S(":protocol"), S("websocket")) == 0, ":protocol");
        CHECK_STR(h->protocol, "websocket");
        CHECK(http_head_add_h2(h, S(":bogus"), S("1")) == 0 && h->n_headers == 0, "unknown pseudo field ignored");
        CHECK(http_head_add_h2(h, S("content-type"), S("text/plain")) == 0 && h->n_headers == 1, "a header");
        CHECK(http_head_add_h2(h, S(":method"), "G\0T", 3) == -EBADMSG, "NUL refused");
        CHECK(http_head_add_h2(h, S(":status"), S("2x0")) == 0 && h->status == 0, "malformed :status");
        http_head_free(h);
}

#undef S

static void test_hop_by_hop(void) {
        HttpHead *h = http_head_new(true);
        CHECK(h && http_head_add(h, "Connection", 10, "close, X-Secret", 15) == 0, "add");
        if (!h)
                return;
        CHECK(http_header_is_hop_by_hop(h, "x-secret"), "named by Connection");
        CHECK(http_header_is_hop_by_hop(h, "Transfer-Encoding"), "fixed list");
        CHECK(!http_header_is_hop_by_hop(h, "X-Other"), "end-to-end");
        CHECK(http_header_is_hop_by_hop(h, "keep-alive") && http_header_is_hop_by_hop(h, "TRANSFER-ENCODING") &&
              http_header_is_hop_by_hop(h, "te") && http_header_is_hop_by_hop(h, "hOST"), "any case");
        CHECK(!http_header_is_hop_by_hop(h, "Tf") && !http_header_is_hop_by_hop(h, "Hostile") &&
              !http_header_is_hop_by_hop(h, "Connection-X") && !http_header_is_hop_by_hop(h, ""), "near misses");
        CHECK(http_head_add(h, "A", 1, "b\0c", 3) == -EBADMSG, "NUL refused");
        http_head_free(h);
}

/* An HttpOutFunc collecting into a string. */
typedef struct Sink {
        char buf[2048];
        size_t len;
} Sink;

static void sink_out(const void *p, size_t n, void *userdata) {
        Sink *k = userdata;

        if (n > sizeof(k->buf) - 1 - k->len)
                n = sizeof(k->buf) - 1 - k->len;
        memcpy(k->buf + k->len, p, n);
        k->len += n;
        k->buf[k->len] = 0;
}

static void sink_printf(Sink *k, size_t size, const char *format, ...) _printf_(3, 4);
static void sink_printf(Sink *k, size_t size, const char *format, ...) {
        va_list ap;

        va_start(ap, format);
        http_vwritef(sink_out, k, size, format, ap);
        va_end(ap);
}

static size_t line(char *buf, size_t size, const char *format, ...) _printf_(3, 4);
static size_t line(char *buf, size_t size, const char *format, ...) {
        va_list ap;
        size_t n;

        va_start(ap, format);
        n = http_format_line(buf, size, format, ap);
        va_end(ap);
        return n;
}

static void test_write(void) {
        HttpHead *h = http_head_new(false);
        Sink k = {};
        char buf[8];

        CHECK(h && http_head_add(h, "A", 1, "1", 1) == 0 && http_head_add(h, "Bb", 2, "", 0) == 0, "add");
        if (!h)
                return;
        http_write_fields(h, sink_out, &k);
        CHECK_STR(k.buf, "A: 1\r\nBb: \r\n");
        k = (Sink) {};
        http_write_body("hello", 5, false, sink_out, &k);
        http_write_body("hello", 5, true, sink_out, &k);
        http_write_body("0123456789abcdef", 16, true, sink_out, &k);
        CHECK_STR(k.buf, "hello5\r\nhello\r\n10\r\n0123456789abcdef\r\n");
        k = (Sink) {};
        sink_printf(&k, 8, "%s-%u", "status", 200u);
        CHECK_STR(k.buf, "status-"); /* cut to size - 1 */
        CHECK(line(buf, sizeof(buf), "%s", "ab") == 3 && memcmp(buf, "ab\n", 3) == 0, "a short line");
        CHECK(line(buf, sizeof(buf), "%s", "far too long") == 7 && memcmp(buf, "far to\n", 7) == 0,
              "a line cut to fit with its newline");
        http_head_free(h);
}

int main(void) {
        test_write();
        test_stream();
        test_hop_by_hop();
        test_arena();
        test_h2_fields();
        test_request();
        test_response();
        test_bad();
        return tests_finish("test-http1");
}
