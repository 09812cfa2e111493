// SPDX-License-Identifier: LGPL-2.1-or-later
/* Unit tests for capsule.c: RFC 9000's variable-length integer examples (A.1) and the bounds of
 * each size; capsules parsed whole, in every truncation, and past their bound; DATAGRAM capsules
 * of context 0 and others, empty, without a context ID and oversized; written and read back. */

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "capsule.h"
#include "macro.h"
#include "tests.h"

static void test_varint(void) {
        /* RFC 9000, Appendix A.1 */
        static const struct {
                const char *bytes;
                size_t n;
                uint64_t value;
        } v[] = {
                { "\xc2\x19\x7c\x5e\xff\x14\xe8\x8c", 8, UINT64_C(151288809941952652) },
                { "\x9d\x7f\x3e\x7d", 4, 494878333 },
                { "\x7b\xbd", 2, 15293 },
                { "\x25", 1, 37 },
                { "\x40\x25", 2, 37 }, /* longer than needed: accepted */
        };
        for (size_t i = 0; i < ELEMENTSOF(v); i++) {
                uint64_t x = 0;
                size_t r = quic_varint_read((const uint8_t *) v[i].bytes, v[i].n, &x);
                CHECK(r == v[i].n && x == v[i].value, "vector %zu: expected %zu bytes, %llu; got %zu, %llu", i,
                      v[i].n, (unsigned long long) v[i].value, r, (unsigned long long) x);
                for (size_t k = 0; k < v[i].n; k++)
                        CHECK(quic_varint_read((const uint8_t *) v[i].bytes, k, &x) == 0,
                              "vector %zu cut at %zu: incomplete", i, k);
        }
        /* each size's bounds, written minimal and read back */
        static const struct {
                uint64_t value;
                size_t n;
        } w[] = { { 0, 1 }, { 63, 1 }, { 64, 2 }, { 16383, 2 }, { 16384, 4 }, { (UINT64_C(1) << 30) - 1, 4 },
                  { UINT64_C(1) << 30, 8 }, { QUIC_VARINT_MAX, 8 } };
        for (size_t i = 0; i < ELEMENTSOF(w); i++) {
                uint8_t buf[QUIC_VARINT_LEN_MAX];
                uint64_t x = 0;
                size_t n = quic_varint_write(buf, w[i].value);
                CHECK(n == w[i].n, "%llu: expected %zu bytes, got %zu", (unsigned long long) w[i].value, w[i].n, n);
                CHECK(quic_varint_read(buf, n, &x) == n && x == w[i].value, "%llu read back",
                      (unsigned long long) w[i].value);
        }
        uint8_t buf[8];
        CHECK(quic_varint_write(buf, 15293) == 2 && memcmp(buf, "\x7b\xbd", 2) == 0, "15293 as RFC 9000 writes it");
}

static void test_capsules(void) {
        uint8_t buf[CAPSULE_DATAGRAM_SIZE(5) + 8];
        const uint8_t *p;
        size_t n, pn;
        Capsule c;
        int r;

        /* a DATAGRAM capsule of context 0, "hello": 00 06 00 68 65 6c 6c 6f */
        n = capsule_write_datagram(buf, "hello", 5);
        CHECK(n == 8 && memcmp(buf, "\x00\x06\x00hello", 8) == 0, "written as RFC 9297/9298 frame it, got %zu", n);
        memcpy(buf + n, "\x00\x01", 2); /* the next capsule's start */
        r = capsule_parse(buf, n + 2, 100, &c);
        CHECK(r == (int) n && c.type == CAPSULE_DATAGRAM && c.length == 6 && c.data == buf + 2,
              "parsed: expected %zu, got %d", n, r);
        CHECK(capsule_datagram_payload(&c, &p, &pn) == 1 && pn == 5 && memcmp(p, "hello", 5) == 0, "payload");
        for (size_t k = 0; k < n; k++)
                CHECK(capsule_parse(buf, k, 100, &c) == 0, "cut at %zu: incomplete", k);
        /* its length over the bound: the stream cannot go on */
        CHECK(capsule_parse(buf, n, 5, &c) == -E2BIG, "over the bound");
        CHECK(capsule_parse((const uint8_t *) "\x00\x80\x01\x00\x00", 5, 65535, &c) == -E2BIG, "65536 > 65535");
        /* said before the bytes arrive: only the length is needed to refuse */
        CHECK(capsule_parse((const uint8_t *) "\x00\xbf\xff\xff\xff", 5, 65535, &c) == -E2BIG, "huge, no bytes");

        /* another context's datagram: dropped; an unknown capsule type: parsed, for the caller to skip */
        r = capsule_parse((const uint8_t *) "\x00\x03\x02hi", 5, 100, &c);
        CHECK(r == 5 && capsule_datagram_payload(&c, &p, &pn) == 0, "context 2 dropped");
        r = capsule_parse((const uint8_t *) "\x40\x29\x02hi", 5, 100, &c); /* type 0x29, two-byte type */
        CHECK(r == 5 && c.type == 0x29 && c.length == 2, "unknown type 0x29, got %d", r);
        /* an empty UDP payload; a DATAGRAM without a context ID */
        r = capsule_parse((const uint8_t *) "\x00\x01\x00", 3, 100, &c);
        CHECK(r == 3 && capsule_datagram_payload(&c, &p, &pn) == 1 && pn == 0, "empty payload");
        r = capsule_parse((const uint8_t *) "\x00\x00", 2, 100, &c);
        CHECK(r == 2 && capsule_datagram_payload(&c, &p, &pn) == -EBADMSG, "no context ID");
        /* a context ID in a longer encoding than needed is still 0 */
        r = capsule_parse((const uint8_t *) "\x00\x04\x40\x00hi", 6, 100, &c);
        CHECK(r == 6 && capsule_datagram_payload(&c, &p, &pn) == 1 && pn == 2, "context 0 in two bytes");
}

static void test_largest(void) {
        static uint8_t payload[CAPSULE_PAYLOAD_MAX], buf[CAPSULE_DATAGRAM_SIZE(CAPSULE_PAYLOAD_MAX)];
        const uint8_t *p;
        size_t n, pn;
        Capsule c;

        for (size_t i = 0; i < sizeof payload; i++)
                payload[i] = (uint8_t) (i * 7);
        n = capsule_write_datagram(buf, payload, sizeof payload);
        CHECK(n == 1 + 4 + 1 + sizeof payload, "the largest: %zu bytes", n);
        CHECK(capsule_parse(buf, n, 1 + CAPSULE_PAYLOAD_MAX, &c) == (int) n, "parsed at the bound");
        CHECK(capsule_datagram_payload(&c, &p, &pn) == 1 && pn == sizeof payload && memcmp(p, payload, pn) == 0,
              "read back");
        /* one byte more than UDP carries, in a capsule of a generous bound: 00, a 4-byte length,
         * context 0, the payload */
        static uint8_t big[6 + CAPSULE_PAYLOAD_MAX + 1] = { 0x00, 0x80, 0x00, (uint8_t) ((CAPSULE_PAYLOAD_MAX + 2) >> 8),
                                                           (uint8_t) (CAPSULE_PAYLOAD_MAX + 2), 0x00 };
        CHECK(capsule_parse(big, sizeof big, 70000, &c) == (int) sizeof big &&
                      capsule_datagram_payload(&c, &p, &pn) == -E2BIG,
              "a payload over UDP's bound");
}

typedef struct Seen {
        char got[64 * 1024];
        size_t n, count;
} Seen;

static void seen_payload(const uint8_t *p, size_t n, void *userdata) {
        Seen *s = userdata;

        if (s->n + n + 1 <= sizeof(s->got)) {
                memcpy(s->got + s->n, p, n);
                s->n += n;
                s->got[s->n++] = '|';
        }
        s->count++;
}

/* The reader, fed a stream in pieces of every size: the same datagrams, in order, each once;
 * other capsule types and contexts skipped; a capsule over the bound or a DATAGRAM without a
 * context ID stops it. */
static void test_reader(void) {
        static uint8_t stream[2 * 70000];
        static uint8_t big[CAPSULE_PAYLOAD_MAX];
        size_t n = 0;
        int r;

        n += capsule_write_datagram(stream + n, "one", 3);
        memcpy(stream + n, "\x17\x03" "abc", 5); /* type 0x17, 3 bytes: skipped */
        n += 5;
        n += capsule_write_datagram(stream + n, "", 0);
        memcpy(stream + n, "\x00\x03\x01xy", 5); /* a DATAGRAM of context 1: skipped */
        n += 5;
        memset(big, 'b', sizeof big);
        n += capsule_write_datagram(stream + n, big, 300);
        n += capsule_write_datagram(stream + n, "two", 3);
        for (size_t piece = 1; piece <= n; piece += piece < 20 ? 1 : 37) {
                CapsuleReader rd = {};
                Seen seen = {};
                r = 0;
                for (size_t o = 0; o < n && r == 0; o += piece)
                        r = capsule_reader_feed(&rd, stream + o, MIN(piece, n - o), seen_payload, &seen);
                CHECK(r == 0 && seen.count == 4 && seen.n == 3 + 1 + 1 + 300 + 1 + 3 + 1 &&
                              memcmp(seen.got, "one||", 5) == 0 && memcmp(seen.got + 5 + 300, "|two|", 5) == 0,
                      "pieces of %zu: r=%d, %zu datagrams", piece, r, seen.count);
                CHECK(rd.n == 0, "pieces of %zu: nothing left over", piece);
                capsule_reader_done(&rd);
        }
        /* the largest payload, split */
        {
                CapsuleReader rd = {};
                Seen seen = {};
                n = capsule_write_datagram(stream, big, sizeof big);
                r = capsule_reader_feed(&rd, stream, 1000, seen_payload, &seen);
                r = r ?: capsule_reader_feed(&rd, stream + 1000, n - 1000, seen_payload, &seen);
                CHECK(r == 0 && seen.count == 1, "the largest datagram in two pieces: r=%d count=%zu", r, seen.count);
                capsule_reader_done(&rd);
        }
        /* a capsule longer than CAPSULE_LENGTH_MAX: refused as soon as its length is read */
        {
                CapsuleReader rd = {};
                Seen seen = {};
                static const uint8_t over[] = { 0x00, 0x80, 0x01, 0x00, 0x01 }; /* 65,537 */
                r = capsule_reader_feed(&rd, over, 2, seen_payload, &seen);
                CHECK(r == 0, "a length cut short asks for more");
                r = capsule_reader_feed(&rd, over + 2, 3, seen_payload, &seen);
                CHECK(r == -E2BIG, "over the bound after a split: %d", r);
                capsule_reader_done(&rd);
                rd = (CapsuleReader) {};
                CHECK(capsule_reader_feed(&rd, over, sizeof over, seen_payload, &seen) == -E2BIG, "over the bound");
                capsule_reader_done(&rd);
                /* a DATAGRAM without a context ID */
                CHECK(capsule_reader_feed(&rd, (const uint8_t *) "\x00\x00", 2, seen_payload, &seen) == -EBADMSG,
                      "no context ID");
                capsule_reader_done(&rd);
                CHECK(seen.count == 0, "nothing delivered");
        }
}

int main(void) {
        test_varint();
        test_capsules();
        test_largest();
        test_reader();
        return tests_finish("test-capsule");
}
