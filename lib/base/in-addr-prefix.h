// SPDX-License-Identifier: LGPL-2.1-or-later
/* IPv4 and IPv6 address prefixes ("192.0.2.0/24", "2001:db8::/32", a bare address is a /32 or
 * /128): parsing and matching a socket address against them. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "socket-util.h"

typedef struct AddressPrefix {
        int family;             /* AF_INET or AF_INET6 */
        uint8_t addr[16];       /* network byte order; bits past prefixlen are zero */
        unsigned prefixlen;     /* 0..32 or 0..128 */
} AddressPrefix;

/* Parses a numeric address with an optional "/LEN". Host bits set past LEN are an error
 * ("10.1.2.3/8" is a typo more often than a wish), as is anything but a numeric address
 * (no names: this is for access lists). -EINVAL with *reason set on bad input. An IPv4-mapped
 * IPv6 prefix of /96 or longer ("::ffff:192.0.2.0/120") is stored as the IPv4 prefix it names,
 * since IPv4 visitors match as IPv4 whichever socket family accepted them. */
int address_prefix_parse(const char *s, AddressPrefix *ret, const char **reason);
/* Whether a (AF_INET or AF_INET6; an IPv4-mapped IPv6 address counts as its IPv4 address)
 * lies in p. */
bool address_prefix_match(const AddressPrefix *p, const SocketAddress *a);
/* The peer's address as address_prefix_match() sees it (a v4-mapped IPv6 one as IPv4) into
 * ret_addr, zero-padded: AF_INET or AF_INET6, -EAFNOSUPPORT for another family. */
int address_prefix_peer(const SocketAddress *a, uint8_t ret_addr[static 16]);
/* Clears the bits of addr past prefixlen. */
void address_prefix_mask(uint8_t addr[static 16], unsigned prefixlen);
/* "192.0.2.0/24", "2001:db8::/32". */
#define ADDRESS_PREFIX_STR_MAX (INET6_ADDRSTRLEN + 4)
const char *address_prefix_format(const AddressPrefix *p, char buf[static ADDRESS_PREFIX_STR_MAX]);
