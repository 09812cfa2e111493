// SPDX-License-Identifier: LGPL-2.1-or-later
/* Unit tests for proxy-protocol.c: headers written and parsed back (v1, v2, IPv4, IPv6, mixed
 * and v4-mapped), the examples of haproxy's proxy-protocol.txt, and what the parser refuses or
 * waits for (truncated, oversized, wrong signature, bad version, LOCAL, UNIX, TLVs, garbage). */

#include <stdio.h>
#include <string.h>

#include "macro.h"
#include "proxy-protocol.h"
#include "tests.h"

static SocketAddress addr(const char *s) {
        SocketAddress a = {};
        int r = socket_address_parse(s, 0, &a);
        CHECK(r >= 0, "'%s' parses as an address", s);
        return a;
}

static const char *fmt(const SocketAddress *a, char buf[static SOCKADDR_STR_MAX]) {
        return socket_address_format(a, buf);
}

/* Writes src -> dst with version v, checks the exact bytes when expect is given (expect_len
 * bytes), then parses them back, also with trailing data and in every truncation. */
static void round_trip(ProxyProtocol v, const char *src, const char *dst, const char *want_src,
                       const char *want_dst, const void *expect, size_t expect_len) {
        SocketAddress s = addr(src), d = addr(dst);
        uint8_t buf[PROXY_HEADER_WRITE_MAX + 16];
        char a[SOCKADDR_STR_MAX];
        ProxyHeader h;
        int n, r;

        n = proxy_header_write(v, &s, &d, buf);
        CHECK(n > 0, "%s %s -> %s: expected a header, got %d", proxy_protocol_to_string(v), src, dst, n);
        if (n <= 0)
                return;
        if (expect)
                CHECK((size_t) n == expect_len && memcmp(buf, expect, expect_len) == 0,
                      "%s %s -> %s: expected %zu exact bytes, got %d%s%.*s", proxy_protocol_to_string(v), src,
                      dst, expect_len, n, v == PROXY_PROTOCOL_V1 ? ": " : "",
                      v == PROXY_PROTOCOL_V1 ? n : 0, (char *) buf);
        memcpy(buf + n, "GET / HTTP/1.1\r\n", 16);
        r = proxy_header_parse(buf, (size_t) n + 16, &h);
        CHECK(r == n, "%s %s -> %s: parse expected length %d, got %d", proxy_protocol_to_string(v), src, dst, n, r);
        CHECK(h.version == v, "version %d, got %d", v, h.version);
        CHECK(h.has_addresses, "addresses expected");
        CHECK_STR(fmt(&h.source, a), want_src);
        CHECK_STR(fmt(&h.destination, a), want_dst);
        for (int k = 0; k < n; k++) {
                r = proxy_header_parse(buf, (size_t) k, &h);
                CHECK(r == 0, "%s: %d of %d bytes: expected 0 (need more), got %d", proxy_protocol_to_string(v),
                      k, n, r);
        }
}

static void test_round_trips(void) {
        static const uint8_t v2_in4[] = {
                0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A, 0x21, 0x11, 0x00, 0x0C,
                127, 0, 0, 2, 203, 0, 113, 10, 0xC8, 0x7B, 0x0D, 0x3D,
        };
        static const uint8_t v2_in6_head[] = {
                0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A, 0x21, 0x21, 0x00, 0x24,
        };
        const char *v1 = "PROXY TCP4 127.0.0.2 203.0.113.10 51323 3389\r\n";

        round_trip(PROXY_PROTOCOL_V1, "127.0.0.2:51323", "203.0.113.10:3389", "127.0.0.2:51323",
                   "203.0.113.10:3389", v1, strlen(v1));
        round_trip(PROXY_PROTOCOL_V2, "127.0.0.2:51323", "203.0.113.10:3389", "127.0.0.2:51323",
                   "203.0.113.10:3389", v2_in4, sizeof(v2_in4));
        v1 = "PROXY TCP6 2001:db8::7 2001:db8::1 65535 1\r\n";
        round_trip(PROXY_PROTOCOL_V1, "[2001:db8::7]:65535", "[2001:db8::1]:1", "[2001:db8::7]:65535",
                   "[2001:db8::1]:1", v1, strlen(v1));
        round_trip(PROXY_PROTOCOL_V2, "[2001:db8::7]:65535", "[2001:db8::1]:1", "[2001:db8::7]:65535",
                   "[2001:db8::1]:1", NULL, 0);
        /* v4-mapped on both sides is IPv4 */
        v1 = "PROXY TCP4 192.0.2.1 192.0.2.2 1000 2000\r\n";
        round_trip(PROXY_PROTOCOL_V1, "[::ffff:192.0.2.1]:1000", "[::ffff:192.0.2.2]:2000", "192.0.2.1:1000",
                   "192.0.2.2:2000", v1, strlen(v1));
        round_trip(PROXY_PROTOCOL_V2, "[::ffff:192.0.2.1]:1000", "192.0.2.2:2000", "192.0.2.1:1000",
                   "192.0.2.2:2000", NULL, 0);
        /* mixed families: IPv6 header, the IPv4 side mapped (it reads back as IPv4) */
        v1 = "PROXY TCP6 ::ffff:192.0.2.1 2001:db8::1 1000 443\r\n";
        round_trip(PROXY_PROTOCOL_V1, "192.0.2.1:1000", "[2001:db8::1]:443", "192.0.2.1:1000", "[2001:db8::1]:443",
                   v1, strlen(v1));
        round_trip(PROXY_PROTOCOL_V2, "192.0.2.1:1000", "[2001:db8::1]:443", "192.0.2.1:1000", "[2001:db8::1]:443",
                   NULL, 0);
        {
                SocketAddress s = addr("[2001:db8::7]:1"), d = addr("[2001:db8::1]:2");
                uint8_t buf[PROXY_HEADER_WRITE_MAX];
                int n = proxy_header_write(PROXY_PROTOCOL_V2, &s, &d, buf);
                CHECK(n == 52 && memcmp(buf, v2_in6_head, sizeof(v2_in6_head)) == 0,
                      "v2 INET6: 52 bytes, family 0x21, length 36; got %d", n);
                CHECK(proxy_header_write(PROXY_PROTOCOL_NO, &s, &d, buf) == -EINVAL, "no: -EINVAL");
                s = (SocketAddress) { .sa.sa_family = AF_UNIX };
                CHECK(proxy_header_write(PROXY_PROTOCOL_V1, &s, &d, buf) == -EAFNOSUPPORT, "AF_UNIX: -EAFNOSUPPORT");
        }
        CHECK(proxy_protocol_from_string("v2") == PROXY_PROTOCOL_V2, "v2");
        CHECK(proxy_protocol_from_string("no") == PROXY_PROTOCOL_NO, "no");
        CHECK(proxy_protocol_from_string("v3") == _PROXY_PROTOCOL_INVALID, "v3 is invalid");
        printf("proxy-protocol: v1 and v2 written and parsed back: IPv4, IPv6, v4-mapped, mixed; exact bytes; "
               "every truncation waits for more\n");
}

static int parse_str(const char *s, ProxyHeader *h) {
        return proxy_header_parse((const uint8_t *) s, strlen(s), h);
}

static void expect_v1(const char *line, bool has, const char *src, const char *dst) {
        ProxyHeader h = {};
        char a[SOCKADDR_STR_MAX];
        int r = parse_str(line, &h);

        CHECK(r == (int) strlen(line), "'%s': expected length %zu, got %d", line, strlen(line), r);
        CHECK(h.has_addresses == has, "'%s': addresses %d expected", line, has);
        if (has && r > 0) {
                CHECK_STR(fmt(&h.source, a), src);
                CHECK_STR(fmt(&h.destination, a), dst);
        }
}

static void expect_bad(const void *p, size_t n, const char *what) {
        ProxyHeader h = { .version = 42 };
        int r = proxy_header_parse(p, n, &h);
        CHECK(r == -EBADMSG, "%s: expected -EBADMSG, got %d", what, r);
        CHECK(h.version == 42, "%s: nothing written on failure", what);
}

static void expect_more(const void *p, size_t n, const char *what) {
        ProxyHeader h;
        int r = proxy_header_parse(p, n, &h);
        CHECK(r == 0, "%s: expected 0 (need more), got %d", what, r);
}

/* The examples and worst cases of proxy-protocol.txt, section 2.1. */
static void test_spec_v1(void) {
        expect_v1("PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n", true, "192.168.0.1:56324",
                  "192.168.0.11:443");
        expect_v1("PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n", true, "255.255.255.255:65535",
                  "255.255.255.255:65535");
        expect_v1("PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
                  "65535 65535\r\n", true, "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535",
                  "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535");
        expect_v1("PROXY UNKNOWN\r\n", false, NULL, NULL);
        /* 107 bytes, the longest line there is */
        expect_v1("PROXY UNKNOWN ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
                  "65535 65535\r\n", false, NULL, NULL);
        expect_v1("PROXY TCP6 ::ffff:10.0.0.1 ::1 0 80\r\n", true, "10.0.0.1:0", "[::1]:80");
        CHECK(strlen("PROXY UNKNOWN ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
                     "65535 65535\r\n") == PROXY_V1_MAX, "the spec's longest line is PROXY_V1_MAX");
        printf("proxy-protocol: the spec's v1 examples and worst cases (TCP4, TCP6, UNKNOWN, 107 bytes)\n");
}

static void test_bad_v1(void) {
        static const char *const bad[] = {
                "PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\n",        /* LF without CR */
                "PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\r",
                "PROXY TCP4 192.168.0.1  192.168.0.11 56324 443\r\n",      /* two spaces */
                "PROXY TCP4 192.168.0.1 192.168.0.11 56324 443 \r\n",      /* trailing space */
                "PROXY TCP4 192.168.0.1 192.168.0.11 56324\r\n",           /* a field missing */
                "PROXY TCP4 192.168.0.1 192.168.0.11 56324 443 1\r\n",     /* one too many */
                "PROXY TCP4 192.168.0.1 192.168.0.11 65536 443\r\n",
                "PROXY TCP4 192.168.0.1 192.168.0.11 056324 443\r\n",
                "PROXY TCP4 192.168.0.1 192.168.0.11 -1 443\r\n",
                "PROXY TCP4 192.168.0.1 192.168.0.11 0443 443\r\n",
                "PROXY TCP4 192.168.0.01 192.168.0.11 1 443\r\n",          /* leading zero in an octet */
                "PROXY TCP4 ::1 192.168.0.11 1 443\r\n",
                "PROXY TCP6 192.168.0.1 ::1 1 443\r\n",
                "PROXY TCP6 fe80::1%eth0 ::1 1 443\r\n",
                "PROXY TCP4 example.com 192.168.0.11 1 443\r\n",
                "PROXY UDP4 192.168.0.1 192.168.0.11 1 443\r\n",
                "PROXY tcp4 192.168.0.1 192.168.0.11 1 443\r\n",
                "PROXY UNKNOWNX\r\n",
                "PROXY \r\n",
                "PROXY\r\n",
                "proxy TCP4 192.168.0.1 192.168.0.11 1 443\r\n",
                "PROXY TCP4 192.168.0.1\t192.168.0.11 1 443\r\n",
                "GET / HTTP/1.1\r\n",
                "SSH-2.0-OpenSSH_9.2\r\n",
        };
        char longline[200];

        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                expect_bad(bad[i], strlen(bad[i]), bad[i]);
        expect_bad("PROXY UNKNOWN \x01\r\n", 17, "control byte");
        expect_bad("PROXY UNKNOWN \xff\r\n", 17, "non-ASCII byte");
        expect_bad("PROXY TCP4 1.2.3.4\0 5.6.7.8 1 2\r\n", 32, "NUL byte");
        /* 108 bytes: one too many, refused once the 106th byte is not the CR */
        snprintf(longline, sizeof(longline), "PROXY UNKNOWN %092d\r\n", 0);
        CHECK(strlen(longline) == PROXY_V1_MAX + 1, "a 108-byte line");
        expect_bad(longline, strlen(longline), "108-byte line");
        expect_bad(longline, PROXY_V1_MAX - 1, "108-byte line, first 106 bytes");
        expect_more(longline, PROXY_V1_MAX - 2, "108-byte line, first 105 bytes");
        /* a prefix of a valid line waits; a wrong prefix is refused at once */
        expect_more("PROX", 4, "PROX");
        expect_more("\r\n", 2, "CR LF: the start of a v2 signature");
        expect_more("PROXY TCP4 1.2.3.4", 18, "half a line");
        expect_more("PROXY UNKNOWN\r", 14, "CR without its LF yet");
        expect_bad("PROXZ", 5, "PROXZ");
        expect_bad("G", 1, "G");
        printf("proxy-protocol: v1 refused: bad spacing, fields, ports, addresses, bytes, case; over 107 bytes; "
               "a prefix waits\n");
}

static void test_v2(void) {
        /* what haproxy's send-proxy-v2 sent: 172.19.0.1:42578 -> 172.19.0.3:80, then a request */
        static const uint8_t haproxy[] = {
                0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a, 0x21, 0x11, 0x00, 0x0c,
                0xac, 0x13, 0x00, 0x01, 0xac, 0x13, 0x00, 0x03, 0xa6, 0x52, 0x00, 0x50, 'G', 'E', 'T', ' ',
        };
        uint8_t b[PROXY_V2_MAX + 16];
        char a[SOCKADDR_STR_MAX];
        ProxyHeader h;
        int r;

        r = proxy_header_parse(haproxy, sizeof(haproxy), &h);
        CHECK(r == 28, "haproxy's header: 28 bytes, got %d", r);
        CHECK(h.version == PROXY_PROTOCOL_V2 && h.has_addresses, "v2 with addresses");
        CHECK_STR(fmt(&h.source, a), "172.19.0.1:42578");
        CHECK_STR(fmt(&h.destination, a), "172.19.0.3:80");

        /* with TLVs after the addresses: ALPN "h2", and a NOOP of 5 bytes */
        memcpy(b, haproxy, 28);
        memcpy(b + 28, "\x01\x00\x02h2\x04\x00\x05zzzzz", 13);
        b[15] = 12 + 13;
        r = proxy_header_parse(b, 41, &h);
        CHECK(r == 41 && h.has_addresses, "TLVs skipped: 41 bytes, got %d", r);
        CHECK_STR(fmt(&h.source, a), "172.19.0.1:42578");
        expect_more(b, 40, "TLVs, one byte short");
        b[28 + 2] = 3; /* ALPN's length runs past the end */
        expect_bad(b, 41, "a TLV longer than the header");
        b[28 + 2] = 2;
        b[15] = 12 + 2; /* two bytes of a TLV head */
        expect_bad(b, 30, "a truncated TLV head");

        /* LOCAL: health checks from the balancer itself; no addresses */
        memcpy(b, haproxy, 16);
        b[12] = 0x20;
        b[13] = 0x00;
        b[15] = 0;
        r = proxy_header_parse(b, 16, &h);
        CHECK(r == 16 && !h.has_addresses, "LOCAL: 16 bytes and no addresses, got %d", r);
        b[13] = 0x11; /* LOCAL with an address block: still skipped */
        b[15] = 12;
        memset(b + 16, 1, 12);
        r = proxy_header_parse(b, 28, &h);
        CHECK(r == 28 && !h.has_addresses, "LOCAL with INET addresses: ignored, got %d", r);
        b[15] = 0; /* LOCAL naming INET without its block, or another transport: still only LOCAL */
        r = proxy_header_parse(b, 16, &h);
        CHECK(r == 16 && !h.has_addresses, "LOCAL, INET family, no block: got %d", r);
        b[13] = 0x03;
        r = proxy_header_parse(b, 16, &h);
        CHECK(r == 16 && !h.has_addresses, "LOCAL, transport 3: got %d", r);

        /* PROXY over UNSPEC and UNIX: accepted, no addresses */
        b[12] = 0x21;
        b[13] = 0x00;
        b[15] = 0;
        r = proxy_header_parse(b, 16, &h);
        CHECK(r == 16 && !h.has_addresses, "PROXY UNSPEC: no addresses, got %d", r);
        b[13] = 0x31;
        b[14] = 0;
        b[15] = 216;
        memset(b + 16, 0, 216);
        r = proxy_header_parse(b, 16 + 216, &h);
        CHECK(r == 232 && !h.has_addresses, "PROXY UNIX: 232 bytes, no addresses, got %d", r);
        b[15] = 100;
        expect_bad(b, 16 + 100, "UNIX with a short address block");

        /* refused */
        memcpy(b, haproxy, 28);
        b[12] = 0x11;
        expect_bad(b, 28, "version 1 in a v2 signature");
        expect_bad(b, 13, "version 1, seen in the 13th byte");
        b[12] = 0x22;
        expect_bad(b, 28, "command 2");
        b[12] = 0x21;
        b[13] = 0x12;
        expect_bad(b, 28, "INET over DGRAM");
        b[13] = 0x10;
        expect_bad(b, 28, "INET over UNSPEC protocol");
        b[13] = 0x41;
        expect_bad(b, 14, "family 4");
        b[13] = 0x13;
        expect_bad(b, 14, "protocol 3");
        b[13] = 0x11;
        b[15] = 11;
        expect_bad(b, 28, "INET with 11 address bytes");
        b[13] = 0x21;
        b[15] = 12;
        expect_bad(b, 28, "INET6 with 12 address bytes");
        b[13] = 0x11;
        b[14] = (PROXY_V2_PAYLOAD_MAX + 1) >> 8;
        b[15] = (PROXY_V2_PAYLOAD_MAX + 1) & 0xff;
        expect_bad(b, 16, "a length over the bound, refused before the payload arrives");
        b[14] = PROXY_V2_PAYLOAD_MAX >> 8;
        b[15] = PROXY_V2_PAYLOAD_MAX & 0xff;
        memset(b + 28, 0, PROXY_V2_MAX - 28);
        b[28] = 0x04; /* one NOOP TLV filling the rest */
        b[29] = (uint8_t) ((PROXY_V2_PAYLOAD_MAX - 12 - 3) >> 8);
        b[30] = (uint8_t) (PROXY_V2_PAYLOAD_MAX - 12 - 3);
        r = proxy_header_parse(b, PROXY_V2_MAX, &h);
        CHECK(r == PROXY_V2_MAX, "the longest header allowed: %d, got %d", PROXY_V2_MAX, r);
        expect_more(b, PROXY_V2_MAX - 1, "the longest header, one byte short");
        memcpy(b, haproxy, 28);
        b[11] = 0x0b;
        expect_bad(b, 28, "a wrong signature byte");
        expect_bad(b, 12, "a wrong signature byte, 12 bytes");
        expect_more(haproxy, 5, "five bytes of the signature");
        expect_bad("\r\n\r\n\x01", 5, "\\r\\n\\r\\n then not NUL");
        expect_bad("\r\nGET", 5, "CR LF then text");
        expect_bad("\x16\x03\x01\x02\x00", 5, "a TLS ClientHello");
        expect_bad("\0", 1, "NUL");
        expect_more("", 0, "nothing yet");
        printf("proxy-protocol: v2: haproxy's header, TLVs skipped and checked, LOCAL, UNSPEC, UNIX; refused: "
               "version, command, family, protocol, short blocks, oversized, signature, garbage\n");
}

static void test_v1_hopeless_prefixes(void) {
        static const char *const hopeless[] = { "PROXY  ", "PROXY XYZ", "PROXY tcp4", "PROXY TCP4 1.2.3.4  ",
                                                "PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3", "PROXY TCP4 1.2.3.4/8",
                                                "PROXY TCP6 gg::1" };
        static const char *const waiting[] = { "PROXY ", "PROXY T", "PROXY TCP4 1.2.3", "PROXY UNK",
                                               "PROXY UNKNOWN whatever", "PROXY TCP6 ::ffff:1.2.3.4 ::1 65535 8" };
        ProxyHeader h;

        for (size_t i = 0; i < ELEMENTSOF(hopeless); i++)
                CHECK(proxy_header_parse((const uint8_t *) hopeless[i], strlen(hopeless[i]), &h) == -EBADMSG,
                      "'%s' can never be valid: refused at once", hopeless[i]);
        for (size_t i = 0; i < ELEMENTSOF(waiting); i++)
                CHECK(proxy_header_parse((const uint8_t *) waiting[i], strlen(waiting[i]), &h) == 0,
                      "'%s' may still become valid: wait", waiting[i]);
        printf("test-proxy-protocol: v1 prefixes that can never be valid are refused before the line ends\n");
}

static void test_unknown(void) {
        uint8_t buf[PROXY_HEADER_WRITE_MAX];
        ProxyHeader h;
        int n;

        for (ProxyProtocol v = PROXY_PROTOCOL_V1; v <= PROXY_PROTOCOL_V2; v++) {
                n = proxy_header_write_unknown(v, buf);
                CHECK(n > 0 && proxy_header_parse(buf, (size_t) n, &h) == n && !h.has_addresses && h.version == v,
                      "%s without addresses parses back as such", proxy_protocol_to_string(v));
        }
        CHECK(proxy_header_write_unknown(PROXY_PROTOCOL_NO, buf) == -EINVAL, "no header for no");
        printf("test-proxy-protocol: headers without addresses (UNKNOWN, LOCAL)\n");
}

int main(void) {
        test_unknown();
        test_v1_hopeless_prefixes();
        test_round_trips();
        test_spec_v1();
        test_bad_v1();
        test_v2();
        return tests_finish("test-proxy-protocol");
}
