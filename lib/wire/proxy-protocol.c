// SPDX-License-Identifier: LGPL-2.1-or-later
/* PROXY protocol headers, v1 and v2; see proxy-protocol.h. The parser looks at no more than the
 * bounds it states, so a caller can read into a fixed buffer and give up at its end. */

#include <arpa/inet.h>
#include <assert.h>
#include <stdio.h>
#include <string.h>

#include "macro.h"
#include "proxy-protocol.h"

static const char *const proxy_protocol_table[_PROXY_PROTOCOL_MAX] = {
        [PROXY_PROTOCOL_NO] = "no",
        [PROXY_PROTOCOL_V1] = "v1",
        [PROXY_PROTOCOL_V2] = "v2",
};

DEFINE_STRING_TABLE_LOOKUP(proxy_protocol, ProxyProtocol);

static const uint8_t v2_signature[12] = {
        0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A, /* \r\n\r\n\0\r\nQUIT\n */
};
static const char v1_signature[6] = "PROXY ";

#define V2_VERSION 0x20
#define V2_CMD_LOCAL 0x0
#define V2_CMD_PROXY 0x1
#define V2_AF_UNSPEC 0x0
#define V2_AF_INET 0x1
#define V2_AF_INET6 0x2
#define V2_AF_UNIX 0x3
#define V2_PROTO_STREAM 0x1

/* One end of the connection, its address in network order, the port in host order. */
typedef struct Endpoint {
        int family;
        uint8_t addr[16];
        uint16_t port;
} Endpoint;

static int endpoint_from(const SocketAddress *a, Endpoint *ret) {
        if (a->sa.sa_family == AF_INET) {
                *ret = (Endpoint) { .family = AF_INET, .port = ntohs(a->in.sin_port) };
                memcpy(ret->addr, &a->in.sin_addr, 4);
        } else if (a->sa.sa_family == AF_INET6) {
                *ret = (Endpoint) { .family = AF_INET6, .port = ntohs(a->in6.sin6_port) };
                if (IN6_IS_ADDR_V4MAPPED(&a->in6.sin6_addr)) {
                        ret->family = AF_INET;
                        memcpy(ret->addr, &a->in6.sin6_addr.s6_addr[12], 4);
                } else
                        memcpy(ret->addr, &a->in6.sin6_addr, 16);
        } else
                return -EAFNOSUPPORT;
        return 0;
}

static void endpoint_map6(Endpoint *e) {
        if (e->family != AF_INET)
                return;
        memmove(e->addr + 12, e->addr, 4);
        memset(e->addr, 0, 10);
        e->addr[10] = e->addr[11] = 0xff;
        e->family = AF_INET6;
}

int proxy_address_parse(const char *s, SocketAddress *ret) {
        char canonical[SOCKADDR_STR_MAX];
        SocketAddress a;

        if (!s || !*s || strchr(s, '%') || socket_address_parse(s, 0, &a) < 0 ||
            socket_address_port(&a) == 0 || !streq(socket_address_format(&a, canonical), s))
                return -EINVAL;
        if (a.sa.sa_family == AF_INET) {
                uint32_t v = ntohl(a.in.sin_addr.s_addr);
                if ((v >> 24) == 0 || v == INADDR_BROADCAST || IN_MULTICAST(v))
                        return -EINVAL;
        } else if (IN6_IS_ADDR_UNSPECIFIED(&a.in6.sin6_addr) || IN6_IS_ADDR_MULTICAST(&a.in6.sin6_addr) ||
                   IN6_IS_ADDR_V4MAPPED(&a.in6.sin6_addr))
                return -EINVAL;
        *ret = a;
        return 0;
}


int proxy_header_write_unknown(ProxyProtocol version, uint8_t buf[static PROXY_HEADER_WRITE_MAX]) {
        switch (version) {
        case PROXY_PROTOCOL_V1:
                memcpy(buf, "PROXY UNKNOWN\r\n", 15);
                return 15;
        case PROXY_PROTOCOL_V2:
                memcpy(buf, v2_signature, 12);
                buf[12] = 0x20; /* version 2, LOCAL */
                buf[13] = 0x00; /* AF_UNSPEC, UNSPEC */
                buf[14] = buf[15] = 0;
                return 16;
        default:
                return -EINVAL;
        }
}

int proxy_header_write(ProxyProtocol version, const SocketAddress *source, const SocketAddress *destination,
                       uint8_t buf[static PROXY_HEADER_WRITE_MAX]) {
        Endpoint s, d;
        size_t alen;
        int r;

        assert(source);
        assert(destination);

        if (version != PROXY_PROTOCOL_V1 && version != PROXY_PROTOCOL_V2)
                return -EINVAL;
        r = endpoint_from(source, &s);
        if (r < 0)
                return r;
        r = endpoint_from(destination, &d);
        if (r < 0)
                return r;
        if (s.family != d.family) {
                endpoint_map6(&s);
                endpoint_map6(&d);
        }

        if (version == PROXY_PROTOCOL_V1) {
                char sa[INET6_ADDRSTRLEN], da[INET6_ADDRSTRLEN];

                if (!inet_ntop(s.family, s.addr, sa, sizeof(sa)) ||
                    !inet_ntop(d.family, d.addr, da, sizeof(da)))
                        return -EAFNOSUPPORT;
                r = snprintf((char *) buf, PROXY_HEADER_WRITE_MAX, "PROXY %s %s %s %u %u\r\n",
                             s.family == AF_INET ? "TCP4" : "TCP6", sa, da, s.port, d.port);
                assert(r > 0 && r < PROXY_HEADER_WRITE_MAX);
                return r;
        }

        alen = s.family == AF_INET ? 4 : 16;
        memcpy(buf, v2_signature, sizeof(v2_signature));
        buf[12] = V2_VERSION | V2_CMD_PROXY;
        buf[13] = (uint8_t) ((s.family == AF_INET ? V2_AF_INET : V2_AF_INET6) << 4 | V2_PROTO_STREAM);
        buf[14] = 0;
        buf[15] = (uint8_t) (2 * alen + 4);
        memcpy(buf + 16, s.addr, alen);
        memcpy(buf + 16 + alen, d.addr, alen);
        buf[16 + 2 * alen] = (uint8_t) (s.port >> 8);
        buf[17 + 2 * alen] = (uint8_t) s.port;
        buf[18 + 2 * alen] = (uint8_t) (d.port >> 8);
        buf[19 + 2 * alen] = (uint8_t) d.port;
        return (int) (PROXY_V2_FIXED + 2 * alen + 4);
}

/* Back into a SocketAddress; a v4-mapped IPv6 address becomes IPv4 (as socket_address_format()
 * shows it), so that access lists and logs see one form of an IPv4 visitor. */
static void endpoint_to(const Endpoint *e, SocketAddress *ret) {
        *ret = (SocketAddress) {};
        if (e->family == AF_INET6 && IN6_IS_ADDR_V4MAPPED((const struct in6_addr *) e->addr)) {
                ret->in.sin_family = AF_INET;
                memcpy(&ret->in.sin_addr, e->addr + 12, 4);
                ret->in.sin_port = htons(e->port);
                ret->len = sizeof(struct sockaddr_in);
        } else if (e->family == AF_INET) {
                ret->in.sin_family = AF_INET;
                memcpy(&ret->in.sin_addr, e->addr, 4);
                ret->in.sin_port = htons(e->port);
                ret->len = sizeof(struct sockaddr_in);
        } else {
                ret->in6.sin6_family = AF_INET6;
                memcpy(&ret->in6.sin6_addr, e->addr, 16);
                ret->in6.sin6_port = htons(e->port);
                ret->len = sizeof(struct sockaddr_in6);
        }
}

/* 0 to 65535 in decimal, no sign, no leading zero. */
static int parse_v1_port(const char *s, uint16_t *ret) {
        unsigned v = 0;
        size_t l = strlen(s);

        if (l == 0 || l > 5 || (s[0] == '0' && l > 1))
                return -EBADMSG;
        for (size_t i = 0; i < l; i++) {
                if (s[i] < '0' || s[i] > '9')
                        return -EBADMSG;
                v = v * 10 + (unsigned) (s[i] - '0');
        }
        if (v > 65535)
                return -EBADMSG;
        *ret = (uint16_t) v;
        return 0;
}

/* "TCP4 SRC DST SPORT DPORT" or "TCP6 …", line without "PROXY " and CRLF: exactly one space
 * between fields. */
static int parse_v1_addresses(char *line, ProxyHeader *h) {
        char *field[5];
        Endpoint s, d;
        size_t k = 0;

        for (char *p = line;; p++) {
                if (k == ELEMENTSOF(field))
                        return -EBADMSG;
                field[k++] = p;
                p = strchr(p, ' ');
                if (!p)
                        break;
                *p = 0;
        }
        if (k != 5)
                return -EBADMSG;
        for (size_t i = 0; i < k; i++)
                if (!*field[i])
                        return -EBADMSG;
        if (streq(field[0], "TCP4"))
                s.family = d.family = AF_INET;
        else if (streq(field[0], "TCP6"))
                s.family = d.family = AF_INET6;
        else
                return -EBADMSG;
        if (inet_pton(s.family, field[1], s.addr) != 1 || inet_pton(d.family, field[2], d.addr) != 1 ||
            parse_v1_port(field[3], &s.port) < 0 || parse_v1_port(field[4], &d.port) < 0)
                return -EBADMSG;
        endpoint_to(&s, &h->source);
        endpoint_to(&d, &h->destination);
        h->has_addresses = true;
        return 0;
}

/* Whether the text after "PROXY " (n bytes, no CR yet) can still become a valid line, so that
 * what never can is refused at once instead of waiting for 107 bytes or the timeout. */
static bool v1_prefix_possible(const uint8_t *p, size_t n) {
        size_t spaces = 0, field = 0;

        if (memcmp(p, "UNKNOWN", MIN(n, (size_t) 7)) == 0)
                return true; /* anything may follow it */
        if (memcmp(p, "TCP4 ", MIN(n, (size_t) 5)) != 0 && memcmp(p, "TCP6 ", MIN(n, (size_t) 5)) != 0)
                return false;
        for (size_t i = 5; i < n; i++) {
                if (p[i] == ' ') {
                        if (field == 0 || ++spaces > 3)
                                return false; /* two spaces in a row, or a sixth field */
                        field = 0;
                } else if (!strchr("0123456789abcdefABCDEF.:", p[i]) || ++field > 45)
                        return false;     /* INET6_ADDRSTRLEN - 1: the longest address */
        }
        return true;
}

static int parse_v1(const uint8_t *p, size_t n, ProxyHeader *ret) {
        char line[PROXY_V1_MAX];
        size_t limit = MIN(n, (size_t) PROXY_V1_MAX - 1), i;
        ProxyHeader h = { .version = PROXY_PROTOCOL_V1 };
        int r;

        if (memcmp(p, v1_signature, MIN(n, sizeof(v1_signature))) != 0)
                return -EBADMSG;
        /* The CR may sit at index 105 at most: 107 bytes with the LF. Text only before it. */
        for (i = 0; i < limit; i++) {
                if (p[i] == '\r')
                        break;
                if (p[i] < 0x20 || p[i] > 0x7e)
                        return -EBADMSG;
        }
        if (i == limit)
                return n >= PROXY_V1_MAX - 1 || (n > sizeof(v1_signature) &&
                                                 !v1_prefix_possible(p + sizeof(v1_signature), n - sizeof(v1_signature)))
                               ? -EBADMSG : 0;
        if (i + 1 >= n)
                return 0;
        if (p[i + 1] != '\n' || i < sizeof(v1_signature))
                return -EBADMSG;
        memcpy(line, p, i);
        line[i] = 0;

        /* "UNKNOWN": the sender could not tell; anything up to the CRLF is to be ignored. */
        if (startswith(line + sizeof(v1_signature), "UNKNOWN") &&
            (line[sizeof(v1_signature) + 7] == 0 || line[sizeof(v1_signature) + 7] == ' '))
                h.has_addresses = false;
        else {
                r = parse_v1_addresses(line + sizeof(v1_signature), &h);
                if (r < 0)
                        return r;
        }
        *ret = h;
        return (int) (i + 2);
}

static int parse_v2(const uint8_t *p, size_t n, ProxyHeader *ret) {
        ProxyHeader h = { .version = PROXY_PROTOCOL_V2 };
        size_t len, alen, q, end;
        unsigned cmd, fam, proto;

        if (memcmp(p, v2_signature, MIN(n, sizeof(v2_signature))) != 0)
                return -EBADMSG;
        /* Judge each byte as soon as it is there: garbage is refused without waiting for more. */
        if (n > 12 && ((p[12] & 0xF0) != V2_VERSION || (p[12] & 0x0F) > V2_CMD_PROXY))
                return -EBADMSG;
        /* LOCAL (a balancer's health check): the spec has the receiver ignore the family and the
         * address block, whatever they say. */
        if (n > 13 && (p[12] & 0x0F) == V2_CMD_PROXY && ((p[13] >> 4) > V2_AF_UNIX || (p[13] & 0x0F) > 2))
                return -EBADMSG;
        if (n < PROXY_V2_FIXED)
                return 0;
        cmd = p[12] & 0x0F;
        fam = p[13] >> 4;
        proto = p[13] & 0x0F;
        len = (size_t) p[14] << 8 | p[15];
        if (len > PROXY_V2_PAYLOAD_MAX)
                return -EBADMSG;
        alen = cmd != V2_CMD_PROXY ? len
             : fam == V2_AF_INET ? 12 : fam == V2_AF_INET6 ? 36 : fam == V2_AF_UNIX ? 216 : 0;
        if (len < alen)
                return -EBADMSG;
        if (cmd == V2_CMD_PROXY && (fam == V2_AF_INET || fam == V2_AF_INET6) && proto != V2_PROTO_STREAM)
                return -EBADMSG;
        end = PROXY_V2_FIXED + len;
        if (n < end)
                return 0;

        /* TLVs: type (1), length (2, big-endian), value; each must fit. Their content is not ours. */
        for (q = PROXY_V2_FIXED + alen; q < end;) {
                if (end - q < 3)
                        return -EBADMSG;
                q += 3 + ((size_t) p[q + 1] << 8 | p[q + 2]);
                if (q > end)
                        return -EBADMSG;
        }

        if (cmd == V2_CMD_PROXY && (fam == V2_AF_INET || fam == V2_AF_INET6)) {
                size_t l = fam == V2_AF_INET ? 4 : 16;
                const uint8_t *a = p + PROXY_V2_FIXED;
                Endpoint s = { .family = fam == V2_AF_INET ? AF_INET : AF_INET6 };
                Endpoint d = { .family = s.family };

                memcpy(s.addr, a, l);
                memcpy(d.addr, a + l, l);
                s.port = (uint16_t) (a[2 * l] << 8 | a[2 * l + 1]);
                d.port = (uint16_t) (a[2 * l + 2] << 8 | a[2 * l + 3]);
                endpoint_to(&s, &h.source);
                endpoint_to(&d, &h.destination);
                h.has_addresses = true;
        }
        *ret = h;
        return (int) end;
}

int proxy_header_parse(const uint8_t *p, size_t n, ProxyHeader *ret) {
        assert(p || n == 0);
        assert(ret);

        if (n == 0)
                return 0;
        if (p[0] == v1_signature[0])
                return parse_v1(p, n, ret);
        if (p[0] == v2_signature[0])
                return parse_v2(p, n, ret);
        return -EBADMSG;
}
