// SPDX-License-Identifier: LGPL-2.1-or-later
/* Small TCP load tools for bench/run, in C so the measuring side costs little next to what it
 * measures:
 *   tcpbench echo PORT                 epoll echo server on 127.0.0.1:PORT
 *   tcpbench latency PORT N            N round trips of 64 bytes on one connection: p50 p99 (µs)
 *   tcpbench connrate PORT SECS CONC   new connections per second, CONC at a time, each
 *                                      sending 64 bytes and reading them back
 *   tcpbench hold PORT N               N connections, each echoed once; "ready", then held
 *                                      until stdin closes */

#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MSG 64

static double now(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static struct sockaddr_in addr(int port) {
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t) port) };
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        return a;
}

static int dial(int port, int flags) {
        struct sockaddr_in a = addr(port);
        int one = 1, fd = socket(AF_INET, SOCK_STREAM | flags, 0);
        if (fd < 0)
                return -1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        if (connect(fd, (struct sockaddr *) &a, sizeof(a)) < 0 && errno != EINPROGRESS) {
                close(fd);
                return -1;
        }
        return fd;
}

static int read_full(int fd, char *buf, size_t n) {
        size_t got = 0;
        while (got < n) {
                ssize_t r = read(fd, buf + got, n - got);
                if (r <= 0)
                        return -1;
                got += (size_t) r;
        }
        return 0;
}

static int cmp_double(const void *a, const void *b) {
        double x = *(const double *) a, y = *(const double *) b;
        return x < y ? -1 : x > y;
}

static int do_echo(int port) {
        struct sockaddr_in a = addr(port);
        struct epoll_event ev = { .events = EPOLLIN }, evs[256];
        int one = 1, lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0), ep = epoll_create1(0);
        char buf[65536];

        setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(lfd, (struct sockaddr *) &a, sizeof(a)) < 0 || listen(lfd, 4096) < 0) {
                perror("echo: listen");
                return 1;
        }
        ev.data.fd = lfd;
        epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
        for (;;) {
                int n = epoll_wait(ep, evs, 256, -1);
                for (int i = 0; i < n; i++) {
                        int fd = evs[i].data.fd;
                        if (fd == lfd) {
                                int c;
                                while ((c = accept4(lfd, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
                                        setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
                                        ev.data.fd = c;
                                        epoll_ctl(ep, EPOLL_CTL_ADD, c, &ev);
                                }
                                continue;
                        }
                        ssize_t r = read(fd, buf, sizeof(buf));
                        if (r > 0) {
                                /* Small messages: a blocking-ish write is fine for these tests. */
                                ssize_t off = 0;
                                while (off < r) {
                                        ssize_t w = write(fd, buf + off, (size_t) (r - off));
                                        if (w < 0 && errno != EAGAIN)
                                                break;
                                        if (w > 0)
                                                off += w;
                                }
                        } else if (r == 0 || errno != EAGAIN)
                                close(fd);
                }
        }
}

static int do_latency(int port, int n) {
        int fd = dial(port, 0);
        char msg[MSG], back[MSG];
        double *t = calloc((size_t) n, sizeof(double));

        if (fd < 0 || !t) {
                perror("latency: connect");
                return 1;
        }
        memset(msg, 'x', sizeof(msg));
        for (int i = 0; i < n + 100; i++) { /* the first 100 warm up */
                double t0 = now();
                if (write(fd, msg, MSG) != MSG || read_full(fd, back, MSG) < 0) {
                        fprintf(stderr, "latency: connection lost\n");
                        return 1;
                }
                if (i >= 100)
                        t[i - 100] = (now() - t0) * 1e6;
        }
        qsort(t, (size_t) n, sizeof(double), cmp_double);
        printf("%.1f %.1f\n", t[n / 2], t[(int) (n * 0.99)]);
        return 0;
}

typedef struct Conn {
        int fd;
        int state; /* 0 connecting, 1 reading */
        int got;
} Conn;

static int do_connrate(int port, double secs, int conc) {
        int ep = epoll_create1(0);
        Conn *c = calloc((size_t) conc, sizeof(Conn));
        struct epoll_event evs[256];
        char msg[MSG], buf[MSG];
        long done = 0, failed = 0;
        double end = now() + secs, t0 = now();

        memset(msg, 'y', sizeof(msg));
        for (int i = 0; i < conc; i++) {
                struct epoll_event ev = { .events = EPOLLOUT, .data.u32 = (uint32_t) i };
                c[i].fd = dial(port, SOCK_NONBLOCK);
                epoll_ctl(ep, EPOLL_CTL_ADD, c[i].fd, &ev);
        }
        while (now() < end) {
                int n = epoll_wait(ep, evs, 256, 100);
                for (int k = 0; k < n; k++) {
                        Conn *x = &c[evs[k].data.u32];
                        struct epoll_event ev = { .data.u32 = evs[k].data.u32 };
                        bool restart = false;
                        if (x->state == 0) {
                                int err = 0;
                                socklen_t l = sizeof(err);
                                getsockopt(x->fd, SOL_SOCKET, SO_ERROR, &err, &l);
                                if (err || write(x->fd, msg, MSG) != MSG) {
                                        failed++;
                                        restart = true;
                                } else {
                                        x->state = 1;
                                        x->got = 0;
                                        ev.events = EPOLLIN;
                                        epoll_ctl(ep, EPOLL_CTL_MOD, x->fd, &ev);
                                }
                        } else {
                                ssize_t r = read(x->fd, buf, sizeof(buf) - (size_t) x->got);
                                if (r > 0) {
                                        x->got += (int) r;
                                        if (x->got == MSG) {
                                                done++;
                                                restart = true;
                                        }
                                } else if (r == 0 || errno != EAGAIN) {
                                        failed++;
                                        restart = true;
                                }
                        }
                        if (restart) {
                                close(x->fd);
                                x->fd = dial(port, SOCK_NONBLOCK);
                                x->state = 0;
                                ev.events = EPOLLOUT;
                                epoll_ctl(ep, EPOLL_CTL_ADD, x->fd, &ev);
                        }
                }
        }
        printf("%.0f %ld\n", (double) done / (now() - t0), failed);
        return 0;
}

static int do_hold(int port, int n) {
        int *fds = calloc((size_t) n, sizeof(int));
        char b = 'z', back;

        for (int i = 0; i < n; i++) {
                fds[i] = dial(port, 0);
                if (fds[i] < 0 || write(fds[i], &b, 1) != 1 || read_full(fds[i], &back, 1) < 0) {
                        fprintf(stderr, "hold: connection %d failed\n", i);
                        return 1;
                }
        }
        printf("ready %d\n", n);
        fflush(stdout);
        while (read(0, &b, 1) > 0)
                ;
        return 0;
}

int main(int argc, char **argv) {
        struct rlimit rl;

        if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
                rl.rlim_cur = rl.rlim_max;
                setrlimit(RLIMIT_NOFILE, &rl);
        }
        if (argc >= 3 && strcmp(argv[1], "echo") == 0)
                return do_echo(atoi(argv[2]));
        if (argc >= 4 && strcmp(argv[1], "latency") == 0)
                return do_latency(atoi(argv[2]), atoi(argv[3]));
        if (argc >= 5 && strcmp(argv[1], "connrate") == 0)
                return do_connrate(atoi(argv[2]), atof(argv[3]), atoi(argv[4]));
        if (argc >= 4 && strcmp(argv[1], "hold") == 0)
                return do_hold(atoi(argv[2]), atoi(argv[3]));
        fprintf(stderr, "usage: tcpbench echo PORT | latency PORT N | connrate PORT SECS CONC | hold PORT N\n");
        return 2;
}
