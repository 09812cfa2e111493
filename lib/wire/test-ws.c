// SPDX-License-Identifier: LGPL-2.1-or-later
/* Unit tests for WebSocket framing: round trips at every length class, any input split,
 * fragmentation, control frames, and each protocol violation with its close code. */

#include "macro.h"
#include "tests.h"
#include "ws.h"

typedef struct Sink {
        uint8_t data[1 << 21];
        size_t len;
        int last_op;
        uint8_t ctrl[WS_CONTROL_MAX];
        size_t ctrl_len;
} Sink;

static int on_data(void *u, uint8_t *p, size_t n) {
        Sink *s = u;
        if (s->len + n > sizeof(s->data))
                return -ENOBUFS;
        memcpy(s->data + s->len, p, n);
        s->len += n;
        return 0;
}

static int on_control(void *u, WsOpcode op, const uint8_t *p, size_t n) {
        Sink *s = u;
        s->last_op = op;
        memcpy(s->ctrl, p, n);
        s->ctrl_len = n;
        return 0;
}

static char text_buf[8192];
static size_t text_len;
static int text_msgs;

static int on_text(void *u, const uint8_t *p, size_t n, bool fin) {
        if (fin) {
                text_msgs++;
                return 0;
        }
        memcpy(text_buf + text_len, p, n);
        text_len += n;
        return 0;
}

static const WsCallbacks cb = { on_data, on_control, on_text };
static Sink sink;

/* frame(op, fin, payload, masked) into buf */
static size_t frame(uint8_t *buf, int op, bool fin, const uint8_t *payload, size_t n, bool masked) {
        uint8_t key[4] = { 0x12, 0x34, 0x56, 0x78 };
        size_t h = ws_header_build(buf, op, n, masked ? key : NULL);
        if (!fin)
                buf[0] &= 0x7f;
        memcpy(buf + h, payload, n);
        if (masked)
                ws_mask(buf + h, n, key, 0);
        return h + n;
}

static void test_roundtrip(void) {
        static const size_t lens[] = { 0, 1, 125, 126, 127, 65535, 65536, 1 << 20 };
        static uint8_t payload[1 << 20], buf[(1 << 20) + 14];

        for (size_t i = 0; i < sizeof(payload); i++)
                payload[i] = (uint8_t) (i * 7 + 3);
        for (size_t li = 0; li < ELEMENTSOF(lens); li++)
                for (int masked = 0; masked < 2; masked++)
                        for (size_t split = 1; split <= 4096; split *= 8) {
                                WsParser p;
                                size_t n = frame(buf, WS_OP_BINARY, true, payload, lens[li], masked), off = 0;
                                int r = 0;

                                ws_parser_init(&p, masked, 2 << 20);
                                sink.len = 0;
                                /* Feed in pieces of `split` bytes (1 = byte by byte). */
                                while (off < n && r == 0) {
                                        size_t k = MIN(split == 1 && lens[li] > 200 ? 977 : split, n - off);
                                        r = ws_parse(&p, buf + off, k, &cb, &sink);
                                        off += k;
                                }
                                CHECK(r == 0 && sink.len == lens[li] && memcmp(sink.data, payload, lens[li]) == 0,
                                      "len %zu masked %d split %zu: r=%d got %zu bytes", lens[li], masked, split, r,
                                      sink.len);
                        }
}

static void test_fragments_and_control(void) {
        uint8_t buf[512];
        size_t n = 0;
        WsParser p;

        /* binary(FIN=0) "ab", ping "hi" in between, cont(FIN=0) "cd", cont(FIN=1) "ef" */
        n += frame(buf + n, WS_OP_BINARY, false, (const uint8_t *) "ab", 2, true);
        n += frame(buf + n, WS_OP_PING, true, (const uint8_t *) "hi", 2, true);
        n += frame(buf + n, WS_OP_CONTINUATION, false, (const uint8_t *) "cd", 2, true);
        n += frame(buf + n, WS_OP_CONTINUATION, true, (const uint8_t *) "ef", 2, true);
        ws_parser_init(&p, true, 1024);
        sink.len = 0;
        CHECK(ws_parse(&p, buf, n, &cb, &sink) == 0, "fragmented message");
        CHECK(sink.len == 6 && memcmp(sink.data, "abcdef", 6) == 0, "reassembled stream");
        CHECK(sink.last_op == WS_OP_PING && sink.ctrl_len == 2 && memcmp(sink.ctrl, "hi", 2) == 0,
              "ping between fragments");
}

static void expect_fail(const uint8_t *buf, size_t n, bool server, uint64_t max, int code, const char *what) {
        WsParser p;
        uint8_t copy[256];
        int r;
        memcpy(copy, buf, n);
        ws_parser_init(&p, server, max);
        r = ws_parse(&p, copy, n, &cb, &sink);
        CHECK(r < 0 && p.close_code == code, "%s: expected close %d, got r=%d code=%d", what, code, r, p.close_code);
        CHECK(ws_parse(&p, copy, 1, &cb, &sink) < 0, "%s: error is final", what);
}

static void test_violations(void) {
        uint8_t b[256];
        size_t n;
        uint8_t big[200] = {};

        n = frame(b, WS_OP_BINARY, true, (const uint8_t *) "x", 1, true);
        b[0] |= 0x40;
        expect_fail(b, n, true, 1024, WS_CLOSE_PROTOCOL_ERROR, "RSV1");
        n = frame(b, 3, true, (const uint8_t *) "x", 1, true);
        expect_fail(b, n, true, 1024, WS_CLOSE_PROTOCOL_ERROR, "opcode 3");
        n = frame(b, WS_OP_TEXT, true, (const uint8_t *) "x", 1, true);
        expect_fail(b, n, true, 1024, WS_CLOSE_UNSUPPORTED_DATA, "text");
        n = frame(b, WS_OP_BINARY, true, (const uint8_t *) "x", 1, false);
        expect_fail(b, n, true, 1024, WS_CLOSE_PROTOCOL_ERROR, "unmasked from client");
        n = frame(b, WS_OP_BINARY, true, (const uint8_t *) "x", 1, true);
        expect_fail(b, n, false, 1024, WS_CLOSE_PROTOCOL_ERROR, "masked from server");
        n = frame(b, WS_OP_BINARY, true, big, 200, true);
        expect_fail(b, n, true, 100, WS_CLOSE_TOO_BIG, "frame over limit");
        n = frame(b, WS_OP_BINARY, false, big, 60, true);
        n += frame(b + n, WS_OP_CONTINUATION, true, big, 60, true);
        expect_fail(b, n, true, 100, WS_CLOSE_TOO_BIG, "message over limit");
        n = frame(b, WS_OP_PING, false, (const uint8_t *) "x", 1, true);
        expect_fail(b, n, true, 1024, WS_CLOSE_PROTOCOL_ERROR, "fragmented ping");
        n = frame(b, WS_OP_PING, true, big, 126, true);
        expect_fail(b, n, true, 1024, WS_CLOSE_PROTOCOL_ERROR, "ping > 125");
        n = frame(b, WS_OP_CONTINUATION, true, (const uint8_t *) "x", 1, true);
        expect_fail(b, n, true, 1024, WS_CLOSE_PROTOCOL_ERROR, "continuation without start");
        n = frame(b, WS_OP_BINARY, false, (const uint8_t *) "x", 1, true);
        n += frame(b + n, WS_OP_BINARY, true, (const uint8_t *) "y", 1, true);
        expect_fail(b, n, true, 1024, WS_CLOSE_PROTOCOL_ERROR, "new message inside fragments");
        {
                uint8_t nm[] = { 0x82, 0x7e, 0x00, 0x05, 'a', 'b', 'c', 'd', 'e' }; /* 16-bit length for 5 */
                expect_fail(nm, sizeof(nm), false, 1024, WS_CLOSE_PROTOCOL_ERROR, "non-minimal length");
                uint8_t hb[] = { 0x82, 0x7f, 0x80, 0, 0, 0, 0, 0, 0, 1 };
                expect_fail(hb, sizeof(hb), false, UINT64_MAX, WS_CLOSE_PROTOCOL_ERROR, "64-bit high bit");
        }
}

static void test_mask_and_accept(void) {
        uint8_t a[300], b[300], key[4] = { 1, 2, 3, 250 };
        _cleanup_free_ char *acc = ws_accept_key("dGhlIHNhbXBsZSBub25jZQ==");

        CHECK_STR(acc, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="); /* RFC 6455 section 1.3 */
        for (size_t off = 0; off < 8; off++)
                for (size_t len = 0; len < 300; len += 37) {
                        for (size_t i = 0; i < len; i++)
                                a[i] = b[i] = (uint8_t) (i ^ 0x5a);
                        ws_mask(a, len, key, off);
                        for (size_t i = 0; i < len; i++)
                                b[i] ^= key[(off + i) & 3];
                        CHECK(memcmp(a, b, len) == 0, "word mask == byte mask, off %zu len %zu", off, len);
                        uint8_t c[300], src[300];
                        for (size_t i = 0; i < len; i++)
                                src[i] = (uint8_t) (i ^ 0x5a);
                        ws_mask_to(c, src, len, key, off);
                        CHECK(memcmp(c, b, len) == 0, "mask_to == byte mask, off %zu len %zu", off, len);
                }
}

static void test_text(void) {
        uint8_t buf[9000], big[5000];
        size_t n = 0;
        WsParser p;

        /* Text between binary data, fragmented, reaches the text callback whole and separate. */
        n += frame(buf + n, WS_OP_BINARY, true, (const uint8_t *) "bin", 3, true);
        n += frame(buf + n, WS_OP_TEXT, false, (const uint8_t *) "ports ", 6, true);
        n += frame(buf + n, WS_OP_CONTINUATION, true, (const uint8_t *) "1,2", 3, true);
        ws_parser_init(&p, true, 1 << 20);
        p.allow_text = true;
        sink.len = 0;
        text_len = 0;
        text_msgs = 0;
        CHECK(ws_parse(&p, buf, n, &cb, &sink) == 0, "text accepted");
        CHECK(text_msgs == 1 && text_len == 9 && memcmp(text_buf, "ports 1,2", 9) == 0, "text message, got %d/%zu",
              text_msgs, text_len);
        CHECK(sink.len == 3 && memcmp(sink.data, "bin", 3) == 0, "binary unaffected");
        memset(big, 'x', sizeof(big));
        n = frame(buf, WS_OP_TEXT, true, big, sizeof(big), true);
        ws_parser_init(&p, true, 1 << 20);
        p.allow_text = true;
        CHECK(ws_parse(&p, buf, n, &cb, &sink) < 0 && p.close_code == WS_CLOSE_TOO_BIG, "text over 4096 -> 1009");
}

int main(void) {
        test_text();
        test_roundtrip();
        test_fragments_and_control();
        test_violations();
        test_mask_and_accept();
        return tests_finish("test-ws");
}
