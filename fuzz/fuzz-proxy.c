// SPDX-License-Identifier: LGPL-2.1-or-later
/* libFuzzer target: the PROXY protocol parser (v1 and v2). Whatever comes in, a header is never
 * longer than the input or the stated bounds, every prefix of it only asks for more, and its
 * addresses written back in the same version parse to the same addresses. */

#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "proxy-protocol.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool same(const SocketAddress *a, const SocketAddress *b) {
        char x[SOCKADDR_STR_MAX], y[SOCKADDR_STR_MAX];
        return a->sa.sa_family == b->sa.sa_family &&
               streq(socket_address_format(a, x), socket_address_format(b, y));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        uint8_t buf[PROXY_HEADER_WRITE_MAX];
        ProxyHeader h, h2;
        int r, n;

        if (size > 4096)
                return 0;
        r = proxy_header_parse(data, size, &h);
        if (r < 0) {
                if (r != -EBADMSG)
                        abort();
                return 0;
        }
        if (r == 0)
                return 0;
        if ((size_t) r > size || r > (h.version == PROXY_PROTOCOL_V1 ? PROXY_V1_MAX : PROXY_V2_MAX))
                abort();
        /* The header's own prefixes are incomplete, not malformed. */
        for (size_t k = 0; k < (size_t) r; k += 1 + (size_t) r / 64)
                if (proxy_header_parse(data, k, &h2) != 0)
                        abort();
        if (!h.has_addresses)
                return 0;
        if (h.source.sa.sa_family != AF_INET && h.source.sa.sa_family != AF_INET6)
                abort();
        n = proxy_header_write(h.version, &h.source, &h.destination, buf);
        if (n <= 0 || proxy_header_parse(buf, (size_t) n, &h2) != n || !h2.has_addresses ||
            !same(&h.source, &h2.source) || !same(&h.destination, &h2.destination))
                abort();
        return 0;
}
