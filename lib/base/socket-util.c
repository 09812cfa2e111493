// SPDX-License-Identifier: LGPL-2.1-or-later
/* TCP socket helpers: addresses, resolve, connect, listen, accept; see socket-util.h.
 * Accepting logs (rate-limited) when the descriptor table is full. */

#include <arpa/inet.h>
#include <assert.h>
#include <fcntl.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <netdb.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/resource.h>

#include "log.h"
#include "macro.h"
#include "parse-util.h"
#include "ratelimit.h"
#include "socket-util.h"
#include "time-util.h"

int socket_address_parse(const char *s, uint16_t default_port, SocketAddress *ret) {
        _cleanup_free_ char *host = NULL;
        SocketAddress a = {};
        uint16_t port;
        int r;

        assert(s);
        assert(ret);

        r = split_host_port(s, default_port, &host, &port);
        if (r < 0)
                return r;

        if (host[0] == 0 || streq(host, "*")) {
                a.in6.sin6_family = AF_INET6; /* dual-stack any */
                a.in6.sin6_addr = in6addr_any;
                a.in6.sin6_port = htons(port);
                a.len = sizeof(a.in6);
        } else if (inet_pton(AF_INET, host, &a.in.sin_addr) == 1) {
                a.in.sin_family = AF_INET;
                a.in.sin_port = htons(port);
                a.len = sizeof(a.in);
        } else {
                char *pct = strchr(host, '%');
                if (pct) {
                        *pct = 0;
                        a.in6.sin6_scope_id = if_nametoindex(pct + 1);
                        if (a.in6.sin6_scope_id == 0)
                                return -EINVAL;
                }
                if (inet_pton(AF_INET6, host, &a.in6.sin6_addr) != 1)
                        return -EINVAL;
                a.in6.sin6_family = AF_INET6;
                a.in6.sin6_port = htons(port);
                a.len = sizeof(a.in6);
        }
        *ret = a;
        return 0;
}

const char *socket_address_format(const SocketAddress *a, char buf[static SOCKADDR_STR_MAX]) {
        char ip[INET6_ADDRSTRLEN];

        assert(a);
        assert(buf);

        if (a->sa.sa_family == AF_INET) {
                inet_ntop(AF_INET, &a->in.sin_addr, ip, sizeof(ip));
                snprintf(buf, SOCKADDR_STR_MAX, "%s:%u", ip, ntohs(a->in.sin_port));
        } else if (a->sa.sa_family == AF_INET6) {
                if (IN6_IS_ADDR_V4MAPPED(&a->in6.sin6_addr)) {
                        inet_ntop(AF_INET, &a->in6.sin6_addr.s6_addr[12], ip, sizeof(ip));
                        snprintf(buf, SOCKADDR_STR_MAX, "%s:%u", ip, ntohs(a->in6.sin6_port));
                } else {
                        inet_ntop(AF_INET6, &a->in6.sin6_addr, ip, sizeof(ip));
                        snprintf(buf, SOCKADDR_STR_MAX, "[%s]:%u", ip, ntohs(a->in6.sin6_port));
                }
        } else
                snprintf(buf, SOCKADDR_STR_MAX, "(unknown)");
        return buf;
}

uint16_t socket_address_port(const SocketAddress *a) {
        assert(a);
        return ntohs(a->sa.sa_family == AF_INET ? a->in.sin_port : a->in6.sin6_port);
}

void socket_address_set_port(SocketAddress *a, uint16_t port) {
        assert(a);
        if (a->sa.sa_family == AF_INET)
                a->in.sin_port = htons(port);
        else
                a->in6.sin6_port = htons(port);
}

size_t socket_outq(int fd) {
        int n = 0;

        if (ioctl(fd, SIOCOUTQ, &n) < 0 || n < 0)
                return 0;
        return (size_t) n;
}

int resolve_addresses(const char *host, SocketAddress **ret, size_t *ret_n) {
        struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_ADDRCONFIG }, *ai = NULL;
        SocketAddress *l;
        size_t n = 0;
        int r;

        assert(host);
        assert(ret);
        assert(ret_n);

        r = getaddrinfo(host, "1", &hints, &ai);
        switch (r) {
        case 0:
                break;
        case EAI_SYSTEM:
                return -errno;
        case EAI_AGAIN: /* no answer, or SERVFAIL: not "no such host" */
                return -EAGAIN;
        case EAI_MEMORY:
                return -ENOMEM;
        default:
                return -EHOSTUNREACH;
        }
        for (struct addrinfo *i = ai; i; i = i->ai_next)
                n++;
        l = new0(SocketAddress, n);
        if (!l) {
                freeaddrinfo(ai);
                return -ENOMEM;
        }
        n = 0;
        for (struct addrinfo *i = ai; i; i = i->ai_next)
                if (i->ai_addrlen <= sizeof(struct sockaddr_storage)) {
                        memcpy(&l[n].storage, i->ai_addr, i->ai_addrlen);
                        l[n++].len = i->ai_addrlen;
                }
        freeaddrinfo(ai);
        *ret = l;
        *ret_n = n;
        return 0;
}

const char *resolve_strerror(int error) {
        switch (-error) {
        case EHOSTUNREACH:
                return "no such host";
        case EAGAIN:
                return "DNS did not answer (temporary failure in name resolution)";
        case ETIMEDOUT:
                return "no answer from DNS in time";
        default:
                return strerror(-error);
        }
}

int socket_connect_next(const SocketAddress *addrs, size_t n, size_t *next, uint16_t port,
                        bool *ret_connected) {
        int error = -EHOSTUNREACH;

        assert(addrs || n == 0);
        assert(next);

        while (*next < n) {
                SocketAddress a = addrs[(*next)++];
                int fd;

                socket_address_set_port(&a, port);
                fd = socket(a.sa.sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
                if (fd < 0) {
                        error = -errno;
                        continue;
                }
                socket_set_nodelay(fd);
                if (connect(fd, &a.sa, a.len) < 0 && errno != EINPROGRESS) {
                        error = -errno;
                        safe_close(fd);
                        continue;
                }
                if (ret_connected) {
                        /* To a local address the handshake is over when connect() returns (the
                         * kernel ran both ends before it did): asking again says so, and saves
                         * waiting for EPOLLOUT (two epoll_ctl() and a loop iteration). */
                        *ret_connected = false;
                        if (connect(fd, &a.sa, a.len) == 0 || errno == EISCONN)
                                *ret_connected = true;
                        else if (errno != EALREADY && errno != EINPROGRESS) {
                                error = -errno;
                                safe_close(fd); /* refused at once */
                                continue;
                        }
                }
                return fd;
        }
        return error;
}

int socket_listen_tcp(const SocketAddress *a, int *ret_fd) {
        _cleanup_close_ int fd = -1;
        int one = 1, zero = 0;

        assert(a);
        assert(ret_fd);

        fd = socket(a->sa.sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        (void) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (a->sa.sa_family == AF_INET6 && IN6_IS_ADDR_UNSPECIFIED(&a->in6.sin6_addr))
                (void) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
        /* Accepted sockets inherit TCP_NODELAY from their listener: no setsockopt() per
         * connection. */
        socket_set_nodelay(fd);
        if (bind(fd, &a->sa, a->len) < 0)
                return -errno;
        if (listen(fd, SOMAXCONN) < 0)
                return -errno;
        *ret_fd = TAKE_FD(fd);
        return 0;
}

void socket_set_nodelay(int fd) {
        int one = 1;
        (void) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

/* Held open so that at the descriptor limit one can still be freed to shed a connection. */
static int spare_fd = -1;

int accept_shed(int fd, SocketAddress *ret_peer) {
        static RateLimit rl = { .interval_usec = 10 * USEC_PER_SEC, .burst = 1 };
        SocketAddress peer = { .len = sizeof(peer.storage) };
        int cfd;

        cfd = accept4(fd, &peer.sa, &peer.len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (cfd >= 0) {
                if (ret_peer)
                        *ret_peer = peer;
                return cfd;
        }
        if (errno == EMFILE || errno == ENFILE) {
                /* The connection stays queued and epoll would report it again at once: use the
                 * spare descriptor to take it off the queue and close it, instead of spinning. */
                int r = -errno;
                if (ratelimit_below(&rl))
                        log_warning_errno(r, "Cannot accept connections: %m; refusing new ones until "
                                             "descriptors are free.");
                spare_fd = safe_close(spare_fd);
                cfd = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
                safe_close(cfd);
                spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
                return -EAGAIN;
        }
        if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
                log_debug_errno(errno, "Failed to accept a connection: %m");
        return -EAGAIN;
}

void accept_batch(int fd, unsigned max, accept_func_t f, void *userdata) {
        assert(f);

        for (unsigned i = 0; i < max; i++) {
                SocketAddress peer;
                int cfd = accept_shed(fd, &peer);

                if (cfd < 0 || f(cfd, &peer, userdata) < 0)
                        return;
        }
}

void raise_fd_limit(void) {
        struct rlimit rl;
        if (getrlimit(RLIMIT_NOFILE, &rl) >= 0 && rl.rlim_cur < rl.rlim_max) {
                rl.rlim_cur = rl.rlim_max;
                (void) setrlimit(RLIMIT_NOFILE, &rl);
        }
        if (spare_fd < 0)
                spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
}
