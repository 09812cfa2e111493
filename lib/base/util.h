// SPDX-License-Identifier: LGPL-2.1-or-later
/* Parsing and formatting helpers shared by the daemon, inletsctl and the tests:
 * addresses, ports, booleans, time spans, files, tokens, hashes. */
#pragma once

#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "macro.h"

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

#define USEC_PER_SEC UINT64_C(1000000)
#define USEC_PER_MSEC UINT64_C(1000)

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

uint64_t now_usec(void);      /* CLOCK_MONOTONIC */
uint64_t realtime_usec(void); /* CLOCK_REALTIME */

int parse_boolean(const char *s);
int parse_port(const char *s, uint16_t *ret);
int parse_sec(const char *s, uint64_t *ret_usec);
int parse_size(const char *s, uint64_t *ret);
int parse_unsigned(const char *s, unsigned *ret);

/* "1.2.3.4:80", "[::1]:80", "*:80"/":80" (any), or a bare address with default_port.
 * Numeric only: listen addresses never need DNS. */
int socket_address_parse(const char *s, uint16_t default_port, SocketAddress *ret);
const char *socket_address_format(const SocketAddress *a, char buf[static SOCKADDR_STR_MAX]);
uint16_t socket_address_port(const SocketAddress *a);
void socket_address_set_port(SocketAddress *a, uint16_t port);

/* Splits "host:port" / "[v6]:port" / "host"; ret_host is newly allocated. */
int split_host_port(const char *s, uint16_t default_port, char **ret_host, uint16_t *ret_port);

int read_full_file(const char *path, size_t max_size, char **ret, size_t *ret_size);
int write_file_atomic(const char *path, const void *data, size_t size, mode_t mode);

int random_bytes(void *buf, size_t n);
int random_token(char **ret); /* 32 random bytes, hex encoded */
char *hexmem(const void *p, size_t n);
int unhexchar(char c); /* 0-15, or -EINVAL */
int unhexmem(const char *s, void *ret, size_t n);
char *base64mem(const void *p, size_t n);
char *base64url_mem(const void *p, size_t n); /* RFC 4648 §5, no padding (JOSE) */
/* Standard base64 with padding; -EINVAL on anything else. ret is NUL-terminated. */
int unbase64mem(const char *s, char **ret, size_t *ret_len);
int sha256(const void *data, size_t n, uint8_t ret[static 32]);
/* Compares two secrets in time independent of where they differ, and of their lengths. */
bool secret_equal(const char *a, size_t alen, const char *b, size_t blen);

/* Sets *ret_error (if given) to a formatted message, replacing what it held; returns r (or
 * -EINVAL when r is not negative). The one way errors with a message travel up. */
int errorf(char **ret_error, int r, const char *format, ...) _printf_(3, 4);
/* The port of "host:port" / "[v6]:port", 0 if there is none. */
uint16_t authority_port(const char *authority);

char *strstrip(char *s);
/* A byte queue buf[*off, *off + len) of capacity *cap: makes room for n more bytes after it,
 * sliding the data to the front or growing the buffer (at least doubling). */
int buffer_reserve(uint8_t **buf, size_t *off, size_t len, size_t *cap, size_t n);
/* asprintf() that returns the string, or NULL. */
char *asprintf_safe(const char *format, ...) _printf_(1, 2);
bool string_is_safe_id(const char *s, size_t max_len);
int strv_push(char ***l, size_t *n, char *value); /* takes ownership of value; NULL: -ENOMEM */
bool strv_contains(char *const *l, size_t n, const char *s);
/* Bytes the kernel still holds for the peer (sent and not acknowledged, or not sent yet):
 * SIOCOUTQ. A send-stall check compares it across an interval, since the daemon's own writes
 * move only when half the send buffer has drained. 0 when it cannot tell. */
size_t socket_outq(int fd);

/* Resolves host (blocking: call it when no stream is waiting) to its TCP addresses. */
int resolve_addresses(const char *host, SocketAddress **ret, size_t *ret_n);
/* Starts a non-blocking connect() to the next of addrs (from *next on) with port: the fd, or
 * -ECONNREFUSED when none is left. Wait for EPOLLOUT, then check SO_ERROR -- unless
 * ret_connected is given and comes back true: connected already. */
int socket_connect_next(const SocketAddress *addrs, size_t n, size_t *next, uint16_t port, bool *ret_connected);

/* A non-blocking listening TCP socket; "any" IPv6 addresses also take IPv4. */
int socket_listen_tcp(const SocketAddress *a, int *ret_fd);
void socket_set_nodelay(int fd);

/* D-Bus name label: every byte outside [A-Za-z0-9] as _xx, and a leading digit escaped. */
char *bus_label_escape(const char *s);
char *bus_label_unescape(const char *s);

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
