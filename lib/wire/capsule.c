// SPDX-License-Identifier: LGPL-2.1-or-later
#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "capsule.h"
#include "macro.h"

size_t quic_varint_read(const uint8_t *p, size_t n, uint64_t *ret) {
        size_t len;
        uint64_t v;

        if (n == 0)
                return 0;
        /* the two high bits of the first byte: 1, 2, 4 or 8 bytes */
        len = (size_t) 1 << (p[0] >> 6);
        if (n < len)
                return 0;
        v = p[0] & 0x3f;
        for (size_t i = 1; i < len; i++)
                v = (v << 8) | p[i];
        *ret = v;
        return len;
}

size_t quic_varint_write(uint8_t *p, uint64_t v) {
        size_t len = v < (UINT64_C(1) << 6) ? 1 : v < (UINT64_C(1) << 14) ? 2 : v < (UINT64_C(1) << 30) ? 4 : 8;
        static const uint8_t prefix[] = { [1] = 0x00, [2] = 0x40, [4] = 0x80, [8] = 0xc0 };

        assert(v <= QUIC_VARINT_MAX);
        for (size_t i = len; i > 0; i--) {
                p[i - 1] = (uint8_t) v;
                v >>= 8;
        }
        p[0] |= prefix[len];
        return len;
}

int capsule_parse(const uint8_t *buf, size_t n, size_t max, Capsule *ret) {
        uint64_t type, length;
        size_t a, b;

        assert(max <= INT_MAX - CAPSULE_HEADER_MAX); /* the whole size fits the answer */
        a = quic_varint_read(buf, n, &type);
        if (a == 0)
                return 0;
        b = quic_varint_read(buf + a, n - a, &length);
        if (b == 0)
                return 0;
        if (length > max)
                return -E2BIG;
        if (n - a - b < length)
                return 0;
        *ret = (Capsule) { .type = type, .data = buf + a + b, .length = (size_t) length };
        return (int) (a + b + length);
}

int capsule_datagram_payload(const Capsule *c, const uint8_t **ret, size_t *ret_n) {
        uint64_t context;
        size_t a;

        assert(c->type == CAPSULE_DATAGRAM);
        a = quic_varint_read(c->data, c->length, &context);
        if (a == 0)
                return -EBADMSG;
        if (context != 0)
                return 0;
        if (c->length - a > CAPSULE_PAYLOAD_MAX)
                return -E2BIG;
        *ret = c->data + a;
        *ret_n = c->length - a;
        return 1;
}

size_t capsule_datagram_header(uint8_t *out, size_t n) {
        size_t k;

        assert(n <= CAPSULE_PAYLOAD_MAX);
        k = quic_varint_write(out, CAPSULE_DATAGRAM);
        k += quic_varint_write(out + k, 1 + (uint64_t) n);
        out[k++] = 0; /* context ID 0: a UDP payload */
        return k;
}

size_t capsule_write_datagram(uint8_t *out, const void *payload, size_t n) {
        size_t k = capsule_datagram_header(out, n);

        if (n > 0)
                memcpy(out + k, payload, n);
        return k + n;
}

/* How many more bytes the capsule that begins at b (n bytes so far) needs to be whole: exact, so
 * that a copy never takes a byte of the next one. */
static int capsule_missing(const uint8_t *b, size_t n, size_t *ret) {
        size_t tl, ll;
        uint64_t len;

        if (n == 0) {
                *ret = 1;
                return 0;
        }
        tl = (size_t) 1 << (b[0] >> 6);
        if (n < tl + 1) {
                *ret = tl + 1 - n;
                return 0;
        }
        ll = (size_t) 1 << (b[tl] >> 6);
        if (n < tl + ll) {
                *ret = tl + ll - n;
                return 0;
        }
        (void) quic_varint_read(b + tl, ll, &len);
        if (len > CAPSULE_LENGTH_MAX)
                return -E2BIG;
        *ret = tl + ll + (size_t) len - n;
        return 0;
}

static int capsule_deliver(const Capsule *c, capsule_payload_func_t f, void *userdata) {
        const uint8_t *payload;
        size_t n;
        int r;

        if (c->type != CAPSULE_DATAGRAM)
                return 0;
        r = capsule_datagram_payload(c, &payload, &n);
        if (r > 0)
                f(payload, n, userdata);
        return r < 0 ? r : 0;
}

int capsule_reader_feed(CapsuleReader *r, const uint8_t *p, size_t n, capsule_payload_func_t f, void *userdata) {
        assert(r);
        assert(p || n == 0);
        assert(f);

        while (n > 0) {
                Capsule c;
                size_t missing;
                int k;

                if (r->n == 0) {
                        k = capsule_parse(p, n, CAPSULE_LENGTH_MAX, &c);
                        if (k < 0)
                                return k;
                        if (k > 0) {
                                p += k;
                                n -= (size_t) k;
                                k = capsule_deliver(&c, f, userdata);
                                if (k < 0)
                                        return k;
                                continue;
                        }
                }
                /* Split between pieces: completed in r->buf, byte-exact. */
                if (!r->buf) {
                        r->buf = malloc(CAPSULE_HEADER_MAX + CAPSULE_LENGTH_MAX);
                        if (!r->buf)
                                return -ENOMEM;
                }
                k = capsule_missing(r->buf, r->n, &missing);
                if (k < 0)
                        return k;
                missing = MIN(missing, n);
                memcpy(r->buf + r->n, p, missing);
                r->n += missing;
                p += missing;
                n -= missing;
                k = capsule_missing(r->buf, r->n, &missing);
                if (k < 0)
                        return k;
                if (missing == 0) {
                        k = capsule_parse(r->buf, r->n, CAPSULE_LENGTH_MAX, &c);
                        r->n = 0;
                        if (k <= 0)
                                return k < 0 ? k : -EBADMSG;
                        k = capsule_deliver(&c, f, userdata);
                        if (k < 0)
                                return k;
                }
        }
        return 0;
}

void capsule_reader_done(CapsuleReader *r) {
        assert(r);
        r->buf = mfree(r->buf);
        r->n = 0;
}
