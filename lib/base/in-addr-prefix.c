// SPDX-License-Identifier: LGPL-2.1-or-later
/* IPv4 and IPv6 address prefixes for access lists: strict parsing (no names, no host bits past
 * the length) and an allocation-free match against a peer's socket address. */

#include <arpa/inet.h>
#include <assert.h>
#include <stdio.h>

#include "in-addr-prefix.h"
#include "macro.h"

static const uint8_t v4mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

/* Whether the first len bits of a and b agree. */
static bool bits_equal(const uint8_t *a, const uint8_t *b, unsigned len) {
        unsigned full = len / 8, rest = len % 8;

        if (memcmp(a, b, full) != 0)
                return false;
        if (rest == 0)
                return true;
        return ((a[full] ^ b[full]) & (uint8_t) (0xff << (8 - rest))) == 0;
}

/* Whether any bit of a past len is set. */
static bool host_bits_set(const uint8_t *a, size_t size, unsigned len) {
        for (unsigned i = len; i < size * 8; i++)
                if (a[i / 8] & (0x80 >> (i % 8)))
                        return true;
        return false;
}

int address_prefix_parse(const char *s, AddressPrefix *ret, const char **reason) {
        char buf[INET6_ADDRSTRLEN];
        const char *slash, *dummy;
        AddressPrefix p = {};
        unsigned max;
        size_t n;

        assert(s);
        assert(ret);
        if (!reason)
                reason = &dummy;

        slash = strchr(s, '/');
        n = slash ? (size_t) (slash - s) : strlen(s);
        if (n == 0 || n >= sizeof(buf)) {
                *reason = "expected an IP address or prefix such as 192.0.2.0/24 or 2001:db8::/32";
                return -EINVAL;
        }
        memcpy(buf, s, n);
        buf[n] = 0;
        if (inet_pton(AF_INET, buf, p.addr) == 1) {
                p.family = AF_INET;
                max = 32;
        } else if (inet_pton(AF_INET6, buf, p.addr) == 1) {
                p.family = AF_INET6;
                max = 128;
        } else {
                *reason = "expected a numeric IP address or prefix such as 192.0.2.0/24 or 2001:db8::/32 "
                          "(no host names)";
                return -EINVAL;
        }

        p.prefixlen = max;
        if (slash) {
                const char *l = slash + 1;
                size_t k = strspn(l, "0123456789");
                unsigned v = 0;

                if (k == 0 || k > 3 || l[k] != 0) {
                        *reason = "expected a prefix length after '/'";
                        return -EINVAL;
                }
                for (size_t i = 0; i < k; i++)
                        v = v * 10 + (unsigned) (l[i] - '0');
                if (v > max) {
                        *reason = max == 32 ? "IPv4 prefix length must be 0-32"
                                    : "IPv6 prefix length must be 0-128";
                        return -ERANGE;
                }
                p.prefixlen = v;
        }
        if (host_bits_set(p.addr, max / 8, p.prefixlen)) {
                *reason = "address has bits set past the prefix length (write the network address, "
                          "e.g. 10.0.0.0/8)";
                return -EINVAL;
        }

        /* ::ffff:a.b.c.d/96+ is an IPv4 prefix: IPv4 visitors match as IPv4 whatever the socket. */
        if (p.family == AF_INET6 && p.prefixlen >= 96 && memcmp(p.addr, v4mapped, 12) == 0) {
                memmove(p.addr, p.addr + 12, 4);
                memset(p.addr + 4, 0, 12);
                p.family = AF_INET;
                p.prefixlen -= 96;
        }
        *ret = p;
        return 0;
}

/* The address of a as an IPv4 or IPv6 address (a v4-mapped IPv6 one as IPv4); 0 if neither. */
static int peer_address(const SocketAddress *a, const uint8_t **ret) {
        if (a->sa.sa_family == AF_INET) {
                *ret = (const uint8_t *) &a->in.sin_addr;
                return AF_INET;
        }
        if (a->sa.sa_family == AF_INET6) {
                const uint8_t *b = a->in6.sin6_addr.s6_addr;
                if (memcmp(b, v4mapped, 12) == 0) {
                        *ret = b + 12;
                        return AF_INET;
                }
                *ret = b;
                return AF_INET6;
        }
        return 0;
}

bool address_prefix_match(const AddressPrefix *p, const SocketAddress *a) {
        const uint8_t *b = NULL;

        assert(p);
        assert(a);
        return peer_address(a, &b) == p->family && bits_equal(p->addr, b, p->prefixlen);
}

int address_prefix_peer(const SocketAddress *a, uint8_t ret_addr[static 16]) {
        const uint8_t *b = NULL;
        int family;

        assert(a);
        family = peer_address(a, &b);
        if (family == 0)
                return -EAFNOSUPPORT;
        memset(ret_addr, 0, 16);
        memcpy(ret_addr, b, family == AF_INET ? 4 : 16);
        return family;
}

void address_prefix_mask(uint8_t addr[static 16], unsigned prefixlen) {
        for (unsigned i = prefixlen / 8; i < 16; i++)
                addr[i] &= i == prefixlen / 8 ? (uint8_t) (0xff << (8 - prefixlen % 8)) : 0;
}

const char *address_prefix_format(const AddressPrefix *p, char buf[static ADDRESS_PREFIX_STR_MAX]) {
        char a[INET6_ADDRSTRLEN];

        assert(p);
        if (!inet_ntop(p->family, p->addr, a, sizeof(a)))
                snprintf(a, sizeof(a), "?");
        snprintf(buf, ADDRESS_PREFIX_STR_MAX, "%s/%u", a, p->prefixlen);
        return buf;
}
