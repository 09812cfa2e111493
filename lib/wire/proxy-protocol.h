// SPDX-License-Identifier: LGPL-2.1-or-later
/* The PROXY protocol (haproxy's proxy-protocol.txt, versions 1 and 2): the header that tells a
 * TCP server who the connection really came from. Written by the tunnel client in front of an
 * upstream connection; parsed strictly and within fixed bounds, for connections from trusted
 * load balancers. Pure byte work: no I/O, no allocation. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "socket-util.h"
#include "string-table.h"

typedef enum ProxyProtocol {
        PROXY_PROTOCOL_NO,
        PROXY_PROTOCOL_V1,   /* text: "PROXY TCP4 SRC DST SPORT DPORT\r\n" */
        PROXY_PROTOCOL_V2,   /* binary: signature, version/command, family, length, addresses */
        _PROXY_PROTOCOL_MAX,
        _PROXY_PROTOCOL_INVALID = -EINVAL,
} ProxyProtocol;

/* "no", "v1", "v2". */
DECLARE_STRING_TABLE_LOOKUP(proxy_protocol, ProxyProtocol);

/* A v1 line is at most 107 bytes with its CRLF (the spec's bound, "PROXY UNKNOWN" with two
 * full IPv6 addresses). */
#define PROXY_V1_MAX 107
/* v2: the 16-byte fixed part, then up to PROXY_V2_PAYLOAD_MAX bytes of addresses and TLVs.
 * The spec lets a receiver refuse lengths it does not support; addresses take at most 216
 * (AF_UNIX), and what load balancers add as TLVs (ALPN, authority, SSL, AWS/Azure ids) fits
 * well within 1024. A longer header is malformed to us. */
#define PROXY_V2_FIXED 16
#define PROXY_V2_PAYLOAD_MAX 1024
#define PROXY_V2_MAX (PROXY_V2_FIXED + PROXY_V2_PAYLOAD_MAX)
/* Room for any header proxy_header_write() makes (v1 TCP6 is 104 bytes, v2 INET6 is 52). */
#define PROXY_HEADER_WRITE_MAX 108

/* The header for a connection from source to destination (AF_INET or AF_INET6, either may be
 * v4-mapped) into buf: its length, or -EAFNOSUPPORT for another family, -EINVAL for
 * PROXY_PROTOCOL_NO. Two IPv4 addresses (mapped or not) make TCP4/AF_INET; when one side is
 * IPv6, the other is written v4-mapped and the header is TCP6/AF_INET6, as haproxy does. v2
 * carries the PROXY command, STREAM, and no TLVs. */
int proxy_header_write(ProxyProtocol version, const SocketAddress *source, const SocketAddress *destination,
                       uint8_t buf[static PROXY_HEADER_WRITE_MAX]);

/* The addresses the exit server sends with each stream (x-forwarded-for and :authority of a
 * CONNECT stream, x-inlets-peer and x-inlets-local of a request): "ADDR:PORT" or "[V6]:PORT"
 * exactly as socket_address_format() writes them (no brackets around IPv4, no v4-mapped form,
 * no leading zeros, no zone), with a port, and an address a visitor can have (not the "any"
 * address, 0.0.0.0/8, broadcast or multicast). -EINVAL otherwise, s NULL included. */
int proxy_address_parse(const char *s, SocketAddress *ret);

/* The header that names no addresses ("PROXY UNKNOWN\r\n", or v2 LOCAL): the receiver keeps
 * the connection's own. Written when the visitor is not known, so that the visitor's own first
 * bytes are never taken for a header. Its length, or -EINVAL for PROXY_PROTOCOL_NO. */
int proxy_header_write_unknown(ProxyProtocol version, uint8_t buf[static PROXY_HEADER_WRITE_MAX]);

typedef struct ProxyHeader {
        ProxyProtocol version;
        /* false: the header names no addresses to use (v1 UNKNOWN, v2 LOCAL, v2 AF_UNSPEC or
         * AF_UNIX): the receiver keeps the connection's own, as the spec says. */
        bool has_addresses;
        /* AF_INET or AF_INET6; a v4-mapped IPv6 address comes back as AF_INET. */
        SocketAddress source, destination;
} ProxyHeader;

/* Parses the header at the start of p[0, n): its length in bytes (the data that follows starts
 * there), 0 when p is a valid beginning but incomplete (read more and call again with all of
 * it), or -EBADMSG: not a PROXY header, a malformed one, or one longer than PROXY_V1_MAX /
 * PROXY_V2_MAX. Strict: single spaces, CRLF, numeric addresses as inet_pton() takes them,
 * decimal ports without leading zeros; v2 version 2, command LOCAL or PROXY, INET and INET6
 * only with STREAM, an address block as long as its family needs, TLVs well-formed (and then
 * skipped). ret is written only when a length is returned. */
int proxy_header_parse(const uint8_t *p, size_t n, ProxyHeader *ret);
