// SPDX-License-Identifier: LGPL-2.1-or-later
/* The tunnel client's UDP flows: a socket per flow, connected to its upstream, so replies find
 * their flow by the socket they come to and nothing else reaches it. Datagrams that the stream
 * or the socket has no room for are dropped and counted, never queued without bound. A flow ends
 * with its stream, or after UDPIdleSec= (this client's) without a datagram from its visitor. */

#include <netinet/in.h>
#include <sys/socket.h>

#include "capsule.h"
#include "client-udp.h"
#include "log.h"
#include "macro.h"
#include "ratelimit.h"
#include "time-util.h"

#define UDP_BATCH 64
#define UDP_RECV_MAX 65536
#define UDP_SWEEP_USEC (250 * USEC_PER_MSEC)

typedef struct Flow Flow;

struct ClientUdp {
        Manager *manager;
        Flow *flows;
        unsigned n_flows;
        sd_event_source *timer;
        RateLimit log;
};

struct Flow {
        ClientUdp *udp;
        Flow *prev, *next;
        MuxStream *stream;
        int fd;
        sd_event_source *io;
        uint64_t last;
        CapsuleReader reader;
};

static uint8_t udp_buf[CAPSULE_DATAGRAM_SIZE(0) + UDP_RECV_MAX];

static uint64_t now_cached(ClientUdp *u) {
        uint64_t t;
        return sd_event_now(u->manager->event, CLOCK_MONOTONIC, &t) >= 0 ? t : now_usec();
}

static void flow_free(Flow *f) {
        ClientUdp *u = f->udp;

        if (f->stream) {
                mux_stream_set_ops(f->stream, NULL, NULL);
                mux_stream_reset(f->stream);
        }
        LIST_REMOVE(u->flows, f);
        u->n_flows--;
        u->manager->udp.flows--;
        sd_event_source_disable_unref(f->io);
        safe_close(f->fd);
        capsule_reader_done(&f->reader);
        free(f);
}

static void drop(ClientUdp *u, UdpDrop why) {
        u->manager->udp.dropped[why]++;
}

/* A datagram from the tunnel to the upstream. */
static void flow_deliver(const uint8_t *payload, size_t n, void *userdata) {
        Flow *f = userdata;
        ClientUdp *u = f->udp;
        ssize_t k;

        k = send(f->fd, payload, n, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (k < 0 && errno == ECONNREFUSED) /* an earlier datagram's ICMP error, reported now: this one was not sent */
                k = send(f->fd, payload, n, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (k < 0) {
                drop(u, errno == EMSGSIZE ? UDP_DROP_SIZE
                        : errno == EAGAIN || errno == ENOBUFS ? UDP_DROP_FULL
                                                              : UDP_DROP_ERROR);
                return;
        }
        f->last = now_cached(u); /* the visitor's: they keep the flow */
        u->manager->udp.datagrams_in++;
        u->manager->udp.bytes_in += n;
}

static void flow_data(MuxStream *s, const uint8_t *p, size_t n, void *userdata) {
        Flow *f = userdata;
        int r;

        if (!f) { /* refused: what came before the answer is dropped */
                mux_stream_consume(s, n);
                return;
        }
        r = capsule_reader_feed(&f->reader, p, n, flow_deliver, f);
        mux_stream_consume(s, n);
        if (r < 0) {
                if (ratelimit_below(&f->udp->log))
                        log_warning("UDP flow %s: the exit server sent a malformed capsule (%s): the flow ends.",
                                    mux_stream_authority(s), strerror(-r));
                flow_free(f);
        }
}

static void flow_end(MuxStream *s, HttpHead *trailers, void *userdata) {
        http_head_free(trailers);
        if (userdata)
                flow_free(userdata); /* the server ended it */
}

static void flow_closed(MuxStream *s, bool reset, void *userdata) {
        Flow *f = userdata;

        if (!f)
                return;
        f->stream = NULL;
        flow_free(f);
}

static const MuxStreamOps flow_ops = {
        .data = flow_data,
        .end = flow_end,
        .closed = flow_closed,
};

/* Datagrams from the upstream into the tunnel, each one capsule, its head written just before
 * the payload; dropped while the stream holds enough. */
static int flow_readable(sd_event_source *src, int fd, uint32_t revents, void *userdata) {
        Flow *f = userdata;
        ClientUdp *u = f->udp;
        uint8_t *payload = udp_buf + CAPSULE_DATAGRAM_SIZE(0);

        for (unsigned i = 0; i < UDP_BATCH; i++) {
                uint8_t head[CAPSULE_DATAGRAM_SIZE(0)];
                ssize_t n = recv(fd, payload, UDP_RECV_MAX, MSG_DONTWAIT | MSG_TRUNC);
                size_t k;

                if (n < 0) {
                        if (errno == EAGAIN || errno == EINTR)
                                break;
                        continue; /* ECONNREFUSED: the upstream's port is closed; the next one */
                }
                if ((size_t) n > CAPSULE_PAYLOAD_MAX) {
                        drop(u, UDP_DROP_SIZE);
                        continue;
                }
                if (!f->stream || mux_stream_full(f->stream)) {
                        drop(u, UDP_DROP_FULL);
                        continue;
                }
                k = capsule_datagram_header(head, (size_t) n);
                memcpy(payload - k, head, k);
                if (mux_stream_write(f->stream, payload - k, k + (size_t) n) < 0) {
                        drop(u, UDP_DROP_ERROR);
                        continue;
                }
                /* (only the visitor's datagrams keep a flow: see flow_deliver()) */
                u->manager->udp.datagrams_out++;
                u->manager->udp.bytes_out += (size_t) n;
        }
        return 0;
}

static int sweep(sd_event_source *src, uint64_t usec, void *userdata) {
        ClientUdp *u = userdata;
        uint64_t now = now_cached(u), idle = u->manager->def->udp_idle_usec;

        for (Flow *f = u->flows, *next; f; f = next) {
                next = f->next;
                if (now >= f->last + idle)
                        flow_free(f);
        }
        (void) sd_event_source_set_time_relative(src, UDP_SWEEP_USEC);
        return 0;
}

int client_udp_new(Manager *m, ClientUdp **ret) {
        ClientUdp *u = new0(ClientUdp, 1);
        int r;

        if (!u)
                return -ENOMEM;
        u->manager = m;
        u->log = (RateLimit) { .interval_usec = 10 * USEC_PER_SEC, .burst = 10 };
        r = sd_event_add_time_relative(m->event, &u->timer, CLOCK_MONOTONIC, UDP_SWEEP_USEC, UDP_SWEEP_USEC / 4,
                                       sweep, u);
        if (r < 0) {
                free(u);
                return r;
        }
        (void) sd_event_source_set_description(u->timer, "client-udp-sweep");
        (void) sd_event_source_set_enabled(u->timer, SD_EVENT_ON);
        *ret = u;
        return 0;
}

void client_udp_flows_end(ClientUdp *u) {
        if (!u)
                return;
        while (u->flows)
                flow_free(u->flows);
}

ClientUdp *client_udp_free(ClientUdp *u) {
        if (!u)
                return NULL;
        client_udp_flows_end(u);
        sd_event_source_disable_unref(u->timer);
        free(u);
        return NULL;
}

void client_udp_refuse(ClientUdp *u, MuxStream *s, unsigned status) {
        mux_stream_set_ops(s, &flow_ops, NULL);
        if (mux_respond(s, status, NULL, 0, true) < 0)
                mux_stream_reset(s);
}

void client_udp_accept(ClientUdp *u, MuxStream *s, const SocketAddress *upstream) {
        static const HttpHeader capsules[] = { { (char *) "capsule-protocol", (char *) "?1" } };
        const Definition *d = u->manager->def;
        Flow *f;
        int fd, r;

        /* Half the streams at most: the rest stay for TCP (the exit server holds to the same). */
        if (u->n_flows >= MAX(1u, d->max_streams / 2)) {
                if (ratelimit_below(&u->log))
                        log_warning("UDP: %u flows open; refusing more until some end.", u->n_flows);
                return client_udp_refuse(u, s, 503);
        }
        fd = socket(upstream->sa.sa_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0 || connect(fd, &upstream->sa, upstream->len) < 0) {
                r = -errno;
                safe_close(fd);
                if (ratelimit_below(&u->log))
                        log_warning("UDP flow %s: cannot reach the upstream: %s", mux_stream_authority(s), strerror(-r));
                return client_udp_refuse(u, s, 502);
        }
        f = new0(Flow, 1);
        if (!f) {
                safe_close(fd);
                return client_udp_refuse(u, s, 503);
        }
        f->udp = u;
        f->fd = fd;
        f->stream = s;
        f->last = now_cached(u);
        if (sd_event_add_io(u->manager->event, &f->io, fd, EPOLLIN, flow_readable, f) < 0) {
                safe_close(fd);
                free(f);
                return client_udp_refuse(u, s, 503);
        }
        (void) sd_event_source_set_description(f->io, "client-udp-flow");
        LIST_PREPEND(u->flows, f);
        u->n_flows++;
        u->manager->udp.flows++;
        u->manager->udp.flows_total++;
        mux_stream_set_ops(s, &flow_ops, f);
        if (mux_respond(s, 200, capsules, ELEMENTSOF(capsules), false) < 0)
                flow_free(f);
}
