// SPDX-License-Identifier: LGPL-2.1-or-later
/* Unit tests for socket-util: address parse/format round trips (IPv4, IPv6, any, defaults)
 * and refused input; a real loopback listener drained by accept_batch(); connect and resolve. */

#include <arpa/inet.h>
#include <poll.h>

#include "macro.h"
#include "socket-util.h"
#include "tests.h"

static void test_address_round_trips(void) {
        static const struct { const char *in; uint16_t def; const char *out; int family; } cases[] = {
                { "1.2.3.4:80", 0, "1.2.3.4:80", AF_INET },
                { "127.0.0.1", 8123, "127.0.0.1:8123", AF_INET },
                { "0.0.0.0:65535", 0, "0.0.0.0:65535", AF_INET },
                { "[::1]:8080", 0, "[::1]:8080", AF_INET6 },
                { "::1", 443, "[::1]:443", AF_INET6 },
                { "[2001:db8::42]:1", 0, "[2001:db8::42]:1", AF_INET6 },
                { "[::ffff:10.0.0.1]:25", 0, "10.0.0.1:25", AF_INET6 }, /* v4-mapped prints as v4 */
                { "*:80", 0, "[::]:80", AF_INET6 },
                { ":81", 0, "[::]:81", AF_INET6 },
                { "*", 82, "[::]:82", AF_INET6 },
                { "[::1%lo]:8080", 0, "[::1]:8080", AF_INET6 },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                SocketAddress a, b;
                char buf[SOCKADDR_STR_MAX], buf2[SOCKADDR_STR_MAX];
                int r = socket_address_parse(cases[i].in, cases[i].def, &a);

                CHECK(r == 0, "'%s': expected success, got %d", cases[i].in, r);
                if (r < 0)
                        continue;
                CHECK(a.sa.sa_family == cases[i].family, "'%s': expected family %d, got %d", cases[i].in,
                      cases[i].family, a.sa.sa_family);
                CHECK(a.len == (a.sa.sa_family == AF_INET ? sizeof(a.in) : sizeof(a.in6)),
                      "'%s': length %u does not match the family", cases[i].in, (unsigned) a.len);
                CHECK_STR(socket_address_format(&a, buf), cases[i].out);
                /* What we print parses back to the same address. */
                CHECK(socket_address_parse(buf, 0, &b) == 0, "'%s' did not parse back", buf);
                CHECK_STR(socket_address_format(&b, buf2), buf);
        }
        printf("socket_address_parse/format: %zu round trips incl. IPv6, v4-mapped, any, scope\n",
               ELEMENTSOF(cases));
}

static void test_address_bad(void) {
        static const struct { const char *in; int r; } cases[] = {
                { "1.2.3.4", -EINVAL },       /* no port, no default */
                { "1.2.3.4:0", -ERANGE },
                { "1.2.3.4:65536", -ERANGE },
                { "1.2.3.4:http", -EINVAL },
                { "1.2.3.256:80", -EINVAL },
                { "example.com:80", -EINVAL }, /* numeric only */
                { "[::1]x", -EINVAL },
                { "[::1", -EINVAL },
                { "[::1%nosuchif0]:80", -EINVAL },
                { "[fe80::1::2]:80", -EINVAL },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                SocketAddress a = { .len = 12345 };
                int r = socket_address_parse(cases[i].in, 0, &a);
                CHECK(r == cases[i].r, "'%s': expected %d, got %d", cases[i].in, cases[i].r, r);
                CHECK(a.len == 12345, "'%s': *ret written on failure", cases[i].in);
        }

        SocketAddress u = {};
        char buf[SOCKADDR_STR_MAX];
        u.sa.sa_family = AF_UNIX;
        CHECK_STR(socket_address_format(&u, buf), "(unknown)");
        printf("socket_address_parse: %zu bad inputs refused; an unknown family formats as (unknown)\n",
               ELEMENTSOF(cases));
}

static void test_address_port(void) {
        SocketAddress a;
        char buf[SOCKADDR_STR_MAX];

        CHECK(socket_address_parse("10.0.0.1:1000", 0, &a) == 0, "parse v4");
        CHECK(socket_address_port(&a) == 1000, "expected 1000, got %u", socket_address_port(&a));
        socket_address_set_port(&a, 2000);
        CHECK_STR(socket_address_format(&a, buf), "10.0.0.1:2000");
        CHECK(socket_address_parse("[fd00::1]:1000", 0, &a) == 0, "parse v6");
        socket_address_set_port(&a, 3000);
        CHECK(socket_address_port(&a) == 3000, "expected 3000, got %u", socket_address_port(&a));
        CHECK_STR(socket_address_format(&a, buf), "[fd00::1]:3000");
        printf("socket_address_port/set_port: IPv4 and IPv6\n");
}

typedef struct Accepted {
        unsigned n;
        int refuse_after; /* return -ENOMEM once this many were taken; -1: never */
        char peer[SOCKADDR_STR_MAX];
} Accepted;

static int on_accept(int cfd, const SocketAddress *peer, void *userdata) {
        Accepted *acc = userdata;

        acc->n++;
        socket_address_format(peer, acc->peer);
        safe_close(cfd);
        return acc->refuse_after >= 0 && acc->n >= (unsigned) acc->refuse_after ? -ENOMEM : 0;
}

static int connect_to(const SocketAddress *a) {
        size_t next = 0;
        bool connected = false;
        int fd = socket_connect_next(a, 1, &next, socket_address_port(a), &connected);

        CHECK(fd >= 0, "connect to the listener failed: %d", fd);
        CHECK(next == 1, "expected the cursor at 1, got %zu", next);
        return fd;
}

/* Waits until fd has a connection queued (loopback handshakes finish in connect(), but be safe). */
static void wait_readable(int fd) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        CHECK(poll(&p, 1, 5000) == 1, "listener never became readable");
}

static void test_accept_batch(void) {
        _cleanup_close_ int lfd = -1;
        SocketAddress a;
        char buf[SOCKADDR_STR_MAX];
        int clients[5];
        Accepted acc = { .refuse_after = -1 };

        CHECK(socket_address_parse("127.0.0.1:0", 0, &a) == -ERANGE, "port 0 is refused by the parser");
        CHECK(socket_address_parse("127.0.0.1", 1, &a) == 0, "parse loopback");
        socket_address_set_port(&a, 0);
        CHECK(socket_listen_tcp(&a, &lfd) == 0, "listen on 127.0.0.1 failed");
        if (lfd < 0)
                return;
        a.len = sizeof(a.storage);
        CHECK(getsockname(lfd, &a.sa, &a.len) == 0, "getsockname");
        CHECK(socket_address_port(&a) != 0, "the kernel chose no port");
        socket_address_format(&a, buf);

        /* Nothing queued: accept_shed() says -EAGAIN and accept_batch() calls nobody. */
        CHECK(accept_shed(lfd, NULL) == -EAGAIN, "accept_shed on an empty queue");
        accept_batch(lfd, 16, on_accept, &acc);
        CHECK(acc.n == 0, "expected no callback, got %u", acc.n);

        for (size_t i = 0; i < ELEMENTSOF(clients); i++)
                clients[i] = connect_to(&a);
        wait_readable(lfd);

        /* The batch is bounded: 2 of 5 now, the rest on the next round. */
        accept_batch(lfd, 2, on_accept, &acc);
        CHECK(acc.n == 2, "expected 2 accepted with max 2, got %u", acc.n);
        CHECK_CONTAINS(acc.peer, "127.0.0.1:");

        /* A callback returning < 0 stops the batch after that connection. */
        acc.refuse_after = 3;
        accept_batch(lfd, 16, on_accept, &acc);
        CHECK(acc.n == 3, "expected the batch to stop at 3, got %u", acc.n);

        acc.refuse_after = -1;
        accept_batch(lfd, 16, on_accept, &acc);
        CHECK(acc.n == 5, "expected all 5 accepted, got %u", acc.n);
        accept_batch(lfd, 16, on_accept, &acc);
        CHECK(acc.n == 5, "expected nothing more, got %u", acc.n);

        for (size_t i = 0; i < ELEMENTSOF(clients); i++)
                safe_close(clients[i]);
        printf("accept_batch: listener on %s; empty queue, bound of 2, stop on error, drain of 5\n", buf);
}

static void test_connect_refused(void) {
        _cleanup_close_ int lfd = -1;
        SocketAddress a;
        size_t next = 0;
        bool connected = true;
        int fd;

        /* A port we just released: nobody listens there, so loopback refuses at once. */
        CHECK(socket_address_parse("127.0.0.1", 1, &a) == 0, "parse loopback");
        socket_address_set_port(&a, 0);
        CHECK(socket_listen_tcp(&a, &lfd) == 0, "listen");
        a.len = sizeof(a.storage);
        CHECK(getsockname(lfd, &a.sa, &a.len) == 0, "getsockname");
        lfd = safe_close(lfd);

        fd = socket_connect_next(&a, 1, &next, socket_address_port(&a), &connected);
        CHECK(fd == -ECONNREFUSED, "expected -ECONNREFUSED, got %d", fd);
        CHECK(next == 1, "expected the cursor past the address, got %zu", next);
        if (fd >= 0)
                safe_close(fd);
        next = 0;
        CHECK(socket_connect_next(&a, 0, &next, 80, NULL) == -EHOSTUNREACH, "empty list");
        printf("socket_connect_next: a refused loopback port gives -ECONNREFUSED, an empty list -EHOSTUNREACH\n");
}

static void test_resolve(void) {
        _cleanup_free_ SocketAddress *l = NULL;
        size_t n = 0;
        char buf[SOCKADDR_STR_MAX];
        int r = resolve_addresses("127.0.0.1", &l, &n);

        CHECK(r == 0, "resolve 127.0.0.1: %d", r);
        CHECK(n >= 1, "expected an address, got %zu", n);
        if (r == 0 && n >= 1) {
                socket_address_set_port(&l[0], 80);
                CHECK_STR(socket_address_format(&l[0], buf), "127.0.0.1:80");
        }
        printf("resolve_addresses: a numeric host resolves without DNS\n");
}

static void test_edge_input(void) {
        EdgeInput e = {};

        edge_input_event(&e, EPOLLIN);
        CHECK(e.readable && !e.hup, "EPOLLIN: readable, no hup");
        edge_input_read(&e, 100, 100);
        CHECK(e.readable, "a full read keeps it readable");
        edge_input_read(&e, 10, 100);
        CHECK(!e.readable, "a short read empties it");
        edge_input_event(&e, EPOLLIN | EPOLLRDHUP);
        CHECK(e.readable && e.hup, "EPOLLRDHUP: readable and hup");
        edge_input_read(&e, 10, 100);
        CHECK(e.readable, "after hup a short read keeps it readable (read on until 0)");
        edge_input_read(&e, 0, 100);
        CHECK(e.readable, "after hup, 0 is EOF: the caller stops on it");
        errno = EAGAIN;
        edge_input_read(&e, -1, 100);
        CHECK(!e.readable, "EAGAIN empties it");
        printf("EdgeInput: short reads, EAGAIN, and the peer's close\n");
}

int main(void) {
        test_address_round_trips();
        test_address_bad();
        test_address_port();
        test_accept_batch();
        test_connect_refused();
        test_resolve();
        test_edge_input();
        return tests_finish("test-socket-util");
}
