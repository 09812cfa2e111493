// SPDX-License-Identifier: LGPL-2.1-or-later
/* TCP sockets for the event loop: numeric addresses, resolving, non-blocking connect and
 * listen, the shared accept loop, edge-triggered input readiness, descriptor limits. */
#pragma once

#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/types.h>

/* Input readiness of an edge-triggered socket (EPOLLIN|EPOLLRDHUP|EPOLLET): what the last edge
 * said, kept until a read finds the socket empty -- EAGAIN, or a short read (it emptied the
 * TCP queue, and the next arrival is a new edge), except after the peer's close, which brings
 * no new edge: then read on until 0. */
typedef struct EdgeInput {
        bool readable;
        bool hup;
} EdgeInput;

static inline void edge_input_event(EdgeInput *e, uint32_t revents) {
        if (revents & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
                e->readable = true;
        if (revents & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))
                e->hup = true;
}

/* After recv() of up to want bytes returned n (errno set when n < 0). */
static inline void edge_input_read(EdgeInput *e, ssize_t n, size_t want) {
        if ((n < 0 && errno == EAGAIN) || (n >= 0 && (size_t) n < want && !e->hup))
                e->readable = false;
}

typedef struct SocketAddress {
        union {
                struct sockaddr sa;
                struct sockaddr_in in;
                struct sockaddr_in6 in6;
                struct sockaddr_storage storage;
        };
        socklen_t len;
} SocketAddress;

/* Room for "[v6addr%scope]:port". */
#define SOCKADDR_STR_MAX 80

/* "1.2.3.4:80", "[::1]:80", "*:80"/":80" (any), or a bare address with default_port.
 * Numeric only: listen addresses never need DNS. */
int socket_address_parse(const char *s, uint16_t default_port, SocketAddress *ret);
/* "1.2.3.4:80" or "[::1]:80" (a v4-mapped IPv6 address as IPv4) into buf; returns buf. */
const char *socket_address_format(const SocketAddress *a, char buf[static SOCKADDR_STR_MAX]);
uint16_t socket_address_port(const SocketAddress *a);
/* The same address, port and family (both unset counts as the same). */
static inline bool socket_address_equal(const SocketAddress *a, const SocketAddress *b) {
        return a->len == b->len && memcmp(&a->storage, &b->storage, a->len) == 0;
}
void socket_address_set_port(SocketAddress *a, uint16_t port);

/* Bytes the kernel still holds for the peer (sent and not acknowledged, or not sent yet):
 * SIOCOUTQ. A send-stall check compares it across an interval, since the daemon's own writes
 * move only when half the send buffer has drained. 0 when it cannot tell. */
size_t socket_outq(int fd);

/* Resolves host (blocking: call it when no stream is waiting) to its TCP addresses; -EHOSTUNREACH
 * no such host, -EAGAIN DNS did not answer (or failed: try again later). */
int resolve_addresses(const char *host, SocketAddress **ret, size_t *ret_n);
/* What an error of resolving means, for a message ("no such host"). */
const char *resolve_strerror(int error);
/* Starts a non-blocking connect() to the next of addrs (from *next on) with port: the fd, or,
 * when none is left, the error of the last address this call tried (-ECONNREFUSED for a local
 * port nobody listens on), -EHOSTUNREACH when it tried none. Wait for EPOLLOUT, then check
 * SO_ERROR -- unless ret_connected is given and comes back true: connected already. */
int socket_connect_next(const SocketAddress *addrs, size_t n, size_t *next, uint16_t port,
                        bool *ret_connected);

/* A non-blocking listening TCP socket; "any" IPv6 addresses also take IPv4. */
int socket_listen_tcp(const SocketAddress *a, int *ret_fd);
void socket_set_nodelay(int fd);

/* accept4() (non-blocking, close-on-exec) for a listening socket on the event loop: the fd,
 * or -EAGAIN when there is nothing (more) to take now. At the descriptor limit it takes the
 * connection off the queue with a spare descriptor and closes it: epoll would otherwise
 * report the same connection forever. raise_fd_limit() sets the spare up. */
int accept_shed(int fd, SocketAddress *ret_peer);
/* The body of every listening socket's handler: takes up to max connections off fd's queue
 * (accept_shed()) and hands each to f, which owns cfd from then on (it closes it when it
 * refuses it). Stops early when f returns < 0 (out of memory: let the loop breathe). Bounding
 * the batch keeps one busy port from starving the rest of the event loop. */
typedef int (*accept_func_t)(int cfd, const SocketAddress *peer, void *userdata);
void accept_batch(int fd, unsigned max, accept_func_t f, void *userdata);
/* Raises the soft RLIMIT_NOFILE to the hard one (we use epoll, never select()). */
void raise_fd_limit(void);
