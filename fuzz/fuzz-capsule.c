// SPDX-License-Identifier: LGPL-2.1-or-later
/* libFuzzer target: the capsule reader of the UDP tunnel (RFC 9297/9298). Capsules are read from
 * the input one after another as a stream would bring them: each lies within the input and within
 * the bound, each of its prefixes only asks for more, a DATAGRAM's payload lies within its
 * capsule, and a payload written back as a capsule reads back the same. */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "capsule.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static uint8_t out[CAPSULE_DATAGRAM_SIZE(CAPSULE_PAYLOAD_MAX)];
        const size_t max = 1 + CAPSULE_PAYLOAD_MAX + QUIC_VARINT_LEN_MAX;
        size_t o = 0;

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
