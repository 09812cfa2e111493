// SPDX-License-Identifier: LGPL-2.1-or-later
/* libFuzzer target: the capsule reader of the UDP tunnel (RFC 9297/9298). Capsules are read from
 * the input one after another as a stream would bring them: each lies within the input and within
 * the bound, each of its prefixes only asks for more, a DATAGRAM's payload lies within its
 * capsule, and a payload written back as a capsule reads back the same. The reader a stream uses
 * gives the same datagrams whether the input comes whole or in pieces. */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "capsule.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct Digest {
        uint64_t count, bytes, sum;
} Digest;

static void digest(const uint8_t *p, size_t n, void *userdata) {
        Digest *d = userdata;

        d->count++;
        d->bytes += n;
        for (size_t i = 0; i < n; i++)
                d->sum = d->sum * 31 + p[i];
}

/* The reader (capsule_reader_feed) sees the same datagrams and the same end whether the input
 * comes whole or in pieces whose sizes the input's first byte sets. */
static void reader_pieces(const uint8_t *data, size_t size) {
        CapsuleReader a = {}, b = {};
        Digest da = {}, db = {};
        size_t piece = size > 0 ? 1 + data[0] % 17 : 1;
        int ra, rb = 0;

        ra = capsule_reader_feed(&a, data, size, digest, &da);
        for (size_t o = 0; o < size && rb == 0; o += piece)
                rb = capsule_reader_feed(&b, data + o, size - o < piece ? size - o : piece, digest, &db);
        if (ra != rb || da.count != db.count || da.bytes != db.bytes || da.sum != db.sum)
                abort();
        if (ra == 0 && a.n != b.n)
                abort();
        capsule_reader_done(&a);
        capsule_reader_done(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static uint8_t out[CAPSULE_DATAGRAM_SIZE(CAPSULE_PAYLOAD_MAX)];
        const size_t max = 1 + CAPSULE_PAYLOAD_MAX + QUIC_VARINT_LEN_MAX;
        size_t o = 0;

        reader_pieces(data, size);
        while (o < size) {
                const uint8_t *p;
                Capsule c, c2;
                size_t pn, n;
                int r = capsule_parse(data + o, size - o, max, &c);

                if (r == 0 || r == -E2BIG)
                        return 0;
                if (r < 0 || (size_t) r > size - o || c.length > max || c.data < data + o ||
                    c.data + c.length != data + o + (size_t) r)
                        abort();
                for (size_t k = 0; k < (size_t) r; k += 1 + (size_t) r / 16)
                        if (capsule_parse(data + o, k, max, &c2) != 0)
                                abort();
                if (c.type == CAPSULE_DATAGRAM && capsule_datagram_payload(&c, &p, &pn) == 1) {
                        if (p < c.data || p + pn != c.data + c.length || pn > CAPSULE_PAYLOAD_MAX)
                                abort();
                        n = capsule_write_datagram(out, p, pn);
                        if (capsule_parse(out, n, max, &c2) != (int) n || capsule_datagram_payload(&c2, &p, &n) != 1 ||
                            n != pn || memcmp(p, c.data + c.length - pn, pn) != 0)
                                abort();
                }
                o += (size_t) r;
        }
        return 0;
}
