// SPDX-License-Identifier: LGPL-2.1-or-later
/* The exit server's public UDP ports (TCP mode). A client offers them with the "udp-ports"
 * control message, as AllowUDPPorts= permits. Each public peer address on a port is a flow: one
 * CONNECT-UDP stream (RFC 9298) to a client that offers the port, its datagrams in DATAGRAM
 * capsules both ways (docs/protocol.md, "UDP streams"). A flow ends after UDPIdleSec= without a
 * datagram from its visitor, when its client refuses or ends it, or with its session. Nothing
 * queues without bound: a datagram the stream has no room for is dropped, and counted. A flow is
 * a visitor's address and the address it sent to (IP_PKTINFO): replies leave from there, as a
 * UDP server on a wildcard address must.
 *
 * Flows are a bounded table that visitors with spoofed sources can try to fill: one source
 * address (an IPv6 /64) has at most UDP_FLOWS_PER_SOURCE per port; a flow that never got an
 * answer lasts at most UDP_UNANSWERED_USEC; and a full table makes room by evicting (the least
 * recently heard unanswered flow, else the least recently heard one) rather than refusing, so
 * that no one can keep a port to themselves by sending a byte a minute. */

#include <netinet/in.h>
#include <stdio.h>
#include <sys/socket.h>

#include "capsule.h"
#include "crypto-util.h"
#include "log.h"
#include "macro.h"
#include "server-internal.h"
#include "string-util.h"
#include "time-util.h"

#define UDP_BUCKETS 256
#define UDP_BATCH 64                  /* datagrams read per wakeup */
#define UDP_FLOWS_PER_PORT 1024
#define UDP_FLOWS_PER_SOURCE 64        /* per port, per IPv4 address or IPv6 /64 */
#define UDP_UNANSWERED_USEC (10 * USEC_PER_SEC)
#define UDP_SWEEP_USEC (250 * USEC_PER_MSEC)
#define UDP_RECV_MAX 65536            /* a byte more than UDP carries: a longer one shows as such */

typedef struct UdpFlow UdpFlow;

struct UdpPort {
        Server *server;
        UdpPort *next;
        uint16_t port;
        char scope[6];               /* the port as access_list_allows() takes it */
        int fd;
        sd_event_source *io;
        unsigned refs, rr, n_flows;
        bool from_systemd;
        UdpFlow *buckets[UDP_BUCKETS];
};

struct UdpFlow {
        UdpPort *port;
        UdpFlow *prev, *next;        /* in its bucket */
        Session *session;
        MuxStream *stream;           /* NULL: refused, its datagrams dropped until it expires */
        SocketAddress peer, local;   /* local: where its datagrams came to (len 0: unknown) */
        uint64_t last;               /* CLOCK_MONOTONIC µs of its visitor's last datagram */
        bool answered;               /* a datagram came back through the tunnel */
        bool assured;                /* ... and its visitor spoke again after it */
        CapsuleReader reader;
};

static uint64_t hash_seed;
/* One datagram at a time: read in behind the room for its capsule's head. */
static uint8_t udp_buf[CAPSULE_DATAGRAM_SIZE(0) + UDP_RECV_MAX];

static Manager *port_manager(UdpPort *p) {
        return p->server->manager;
}

static uint64_t now_cached(Server *s) {
        uint64_t t;
        return sd_event_now(s->manager->event, CLOCK_MONOTONIC, &t) >= 0 ? t : now_usec();
}

/* Family, address and port: recvmsg() leaves nothing else that differs per datagram. */
static bool peer_equal(const SocketAddress *a, const SocketAddress *b) {
        if (a->sa.sa_family != b->sa.sa_family)
                return false;
        if (a->sa.sa_family == AF_INET)
                return a->in.sin_port == b->in.sin_port && a->in.sin_addr.s_addr == b->in.sin_addr.s_addr;
        return a->in6.sin6_port == b->in6.sin6_port &&
               memcmp(&a->in6.sin6_addr, &b->in6.sin6_addr, sizeof(struct in6_addr)) == 0;
}

/* The same source for UDP_FLOWS_PER_SOURCE: the IPv4 address (also as a dual-stack socket shows
 * it, v4-mapped), or the IPv6 /64. */
static bool source_equal(const SocketAddress *a, const SocketAddress *b) {
        if (a->sa.sa_family != b->sa.sa_family)
                return false;
        if (a->sa.sa_family == AF_INET)
                return a->in.sin_addr.s_addr == b->in.sin_addr.s_addr;
        if (IN6_IS_ADDR_V4MAPPED(&a->in6.sin6_addr) || IN6_IS_ADDR_V4MAPPED(&b->in6.sin6_addr))
                return memcmp(&a->in6.sin6_addr, &b->in6.sin6_addr, 16) == 0;
        return memcmp(&a->in6.sin6_addr, &b->in6.sin6_addr, 8) == 0;
}

/* The address a datagram came to, as the flow it belongs to knows it (len 0: unknown). */
static bool local_equal(const SocketAddress *a, const SocketAddress *b) {
        if (a->len == 0 || b->len == 0)
                return a->len == b->len;
        if (a->sa.sa_family != b->sa.sa_family)
                return false;
        if (a->sa.sa_family == AF_INET)
                return a->in.sin_addr.s_addr == b->in.sin_addr.s_addr;
        return memcmp(&a->in6.sin6_addr, &b->in6.sin6_addr, sizeof(struct in6_addr)) == 0;
}

static unsigned peer_bucket(const SocketAddress *a) {
        uint64_t h = hash_seed ^ UINT64_C(0xcbf29ce484222325);
        const uint8_t *p;
        size_t n;

        if (a->sa.sa_family == AF_INET) {
                p = (const uint8_t *) &a->in.sin_addr;
                n = 4;
        } else {
                p = (const uint8_t *) &a->in6.sin6_addr;
                n = 16;
        }
        for (size_t i = 0; i < n; i++)
                h = (h ^ p[i]) * UINT64_C(0x100000001b3);
        h = (h ^ (a->in.sin_port & 0xff)) * UINT64_C(0x100000001b3);
        h = (h ^ (a->in.sin_port >> 8)) * UINT64_C(0x100000001b3);
        return (unsigned) (h ^ (h >> 32)) % UDP_BUCKETS;
}

static void drop(Server *s, UdpDrop why) {
        s->manager->udp.dropped[why]++;
}

static void flow_free(UdpFlow *f) {
        UdpPort *p = f->port;
        Manager *m = port_manager(p);

        if (f->stream) {
                /* Detached first: a reset we ask for calls nothing back. */
                mux_stream_set_ops(f->stream, NULL, NULL);
                mux_stream_reset(f->stream);
        }
        LIST_REMOVE(p->buckets[peer_bucket(&f->peer)], f);
        p->n_flows--;
        if (f->session)
                f->session->n_udp_flows--;
        m->udp.flows--;
        capsule_reader_done(&f->reader);
        free(f);
}

/* A datagram from the tunnel for f's peer, from the address the peer sent to. */
static void flow_deliver(const uint8_t *payload, size_t n, void *userdata) {
        UdpFlow *f = userdata;
        Server *s = f->port->server;
        union {
                struct cmsghdr h;
                uint8_t buf[CMSG_SPACE(sizeof(struct in6_pktinfo))];
        } control = {};
        struct iovec iov = { .iov_base = (void *) payload, .iov_len = n };
        struct msghdr mh = { .msg_name = &f->peer.sa, .msg_namelen = f->peer.len, .msg_iov = &iov, .msg_iovlen = 1 };
        struct cmsghdr *c = &control.h;

        if (f->local.len > 0 && f->local.sa.sa_family == AF_INET) {
                struct in_pktinfo pi = { .ipi_spec_dst = f->local.in.sin_addr };
                c->cmsg_level = IPPROTO_IP;
                c->cmsg_type = IP_PKTINFO;
                c->cmsg_len = CMSG_LEN(sizeof(pi));
                memcpy(CMSG_DATA(c), &pi, sizeof(pi));
                mh.msg_control = control.buf;
                mh.msg_controllen = CMSG_SPACE(sizeof(pi));
        } else if (f->local.len > 0) {
                struct in6_pktinfo pi = { .ipi6_addr = f->local.in6.sin6_addr };
                c->cmsg_level = IPPROTO_IPV6;
                c->cmsg_type = IPV6_PKTINFO;
                c->cmsg_len = CMSG_LEN(sizeof(pi));
                memcpy(CMSG_DATA(c), &pi, sizeof(pi));
                mh.msg_control = control.buf;
                mh.msg_controllen = CMSG_SPACE(sizeof(pi));
        }
        if (sendmsg(f->port->fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL) < 0) {
                drop(s, errno == EMSGSIZE ? UDP_DROP_SIZE
                        : errno == EAGAIN || errno == ENOBUFS ? UDP_DROP_FULL
                                                              : UDP_DROP_ERROR);
                return;
        }
        /* The visitor's own datagrams keep a flow; what comes back does not (a spoofed byte
         * must not start an endless stream at someone). */
        f->answered = true;
        s->manager->udp.datagrams_in++;
        s->manager->udp.bytes_in += n;
}

static void flow_head(MuxStream *st, HttpHead *h, void *userdata) {
        UdpFlow *f = userdata;
        Server *s = f->port->server;
        unsigned status = h->status;

        http_head_free(h);
        if (status == 200)
                return;
        if (ratelimit_below(&s->udp_log)) {
                char buf[SOCKADDR_STR_MAX];
                log_conn(LOG_INFO, f->session->id, socket_address_format(&f->peer, buf), f->port->port,
                         "UDP port %u: client %s refused the flow of %s (status %u); its datagrams are dropped "
                         "for UDPIdleSec=.", f->port->port, f->session->id, buf, status);
        }
        /* Kept, without its stream, so that the peer's next datagrams do not ask again at once. */
        mux_stream_set_ops(st, NULL, NULL);
        mux_stream_reset(st);
        f->stream = NULL;
}

static void flow_data(MuxStream *st, const uint8_t *p, size_t n, void *userdata) {
        UdpFlow *f = userdata;
        int r;

        r = capsule_reader_feed(&f->reader, p, n, flow_deliver, f);
        mux_stream_consume(st, n);
        if (r < 0) {
                if (ratelimit_below(&f->port->server->udp_log))
                        log_conn(LOG_WARNING, f->session->id, NULL, f->port->port,
                                 "UDP port %u: client %s sent a malformed capsule (%s): the flow ends.", f->port->port,
                                 f->session->id, strerror(-r));
                flow_free(f);
        }
}

static void flow_end(MuxStream *st, HttpHead *trailers, void *userdata) {
        http_head_free(trailers);
        flow_free(userdata); /* the client ended it */
}

static void flow_closed(MuxStream *st, bool reset, void *userdata) {
        UdpFlow *f = userdata;

        f->stream = NULL;
        flow_free(f);
}

static const MuxStreamOps flow_ops = {
        .head = flow_head,
        .data = flow_data,
        .end = flow_end,
        .closed = flow_closed,
};

static bool session_offers_udp(const Session *x, uint16_t port) {
        for (size_t i = 0; i < x->n_udp_ports; i++)
                if (x->udp_ports[i] == port)
                        return true;
        return false;
}

/* Round-robin among the live sessions that offer the port. */
static Session *udp_session_for_port(Server *s, UdpPort *p) {
        unsigned n = 0, pick;

        for (Session *x = s->sessions; x; x = x->next)
                n += !x->held && session_offers_udp(x, p->port);
        if (n == 0)
                return NULL;
        pick = p->rr++ % n;
        for (Session *x = s->sessions; x; x = x->next)
                if (!x->held && session_offers_udp(x, p->port) && pick-- == 0)
                        return x;
        return NULL;
}

/* At most half of MaxStreamsPerClient= streams of a client are UDP flows: spoofed sources can
 * take those, but never the room its TCP connections need. */
static unsigned session_flow_limit(Server *s) {
        return MAX(1u, server_def(s)->max_streams / 2);
}

static int flow_open(UdpFlow *f, Session *x) {
        _cleanup_(http_head_freep) HttpHead *h = http_head_new(true);
        char peer[SOCKADDR_STR_MAX], local[SOCKADDR_STR_MAX], path[128], addr[SOCKADDR_STR_MAX];
        SocketAddress a = f->local;

        if (!h)
                return -ENOMEM;
        if (a.len == 0) { /* no PKTINFO: the socket's own address */
                a.len = sizeof(a.storage);
                if (getsockname(f->port->fd, &a.sa, &a.len) < 0)
                        return -errno;
        }
        socket_address_set_port(&a, f->port->port);
        socket_address_format(&a, local);
        socket_address_format(&f->peer, peer);
        /* RFC 9298's default template names the target: the address without brackets. */
        snprintf(addr, sizeof(addr), "%s", local[0] == '[' ? local + 1 : local);
        addr[strcspn(addr, local[0] == '[' ? "]" : ":")] = 0;
        snprintf(path, sizeof(path), "/.well-known/masque/udp/%s/%u/", addr, f->port->port);
        h->method = http_head_strdup(h, "CONNECT");
        h->protocol = http_head_strdup(h, "connect-udp");
        h->scheme = http_head_strdup(h, "https");
        h->authority = http_head_strdup(h, local);
        h->url = http_head_strdup(h, path);
        if (!h->method || !h->protocol || !h->scheme || !h->authority || !h->url ||
            http_head_add(h, "capsule-protocol", 16, "?1", 2) < 0 ||
            http_head_add(h, "x-forwarded-for", 15, peer, strlen(peer)) < 0)
                return -ENOMEM;
        return mux_request(x->mux, h, false, peer, &flow_ops, f, &f->stream);
}

/* How much a flow has shown that its visitor is there: never answered, answered, or answered
 * and spoken to again (assured, as conntrack says). */
static int flow_class(const UdpFlow *f) {
        return f->assured ? 2 : f->answered;
}

/* Whether a goes before b when room is made for a flow on port: the lower class first, then a
 * flow of that port (a flood on one port pushes out its own before another port's), then the
 * least recently heard. */
static bool flow_evicts_before(const UdpFlow *a, const UdpFlow *b, const UdpPort *port) {
        if (!b)
                return true;
        if (flow_class(a) != flow_class(b))
                return flow_class(a) < flow_class(b);
        if ((a->port == port) != (b->port == port))
                return a->port == port;
        return a->last < b->last;
}

/* The flow to evict for room on port: among only_port's flows (or every port's), of
 * only_session (or any client), from only_source's address (or any). */
static UdpFlow *flow_victim(Server *s, UdpPort *port, UdpPort *only_port, Session *only_session,
                            const SocketAddress *only_source) {
        UdpFlow *best = NULL;

        for (UdpPort *p = s->udp_ports; p; p = p->next) {
                if (only_port && p != only_port)
                        continue;
                for (unsigned b = 0; b < UDP_BUCKETS; b++)
                        for (UdpFlow *f = p->buckets[b]; f; f = f->next)
                                if ((!only_session || f->session == only_session) &&
                                    (!only_source || source_equal(&f->peer, only_source)) &&
                                    flow_evicts_before(f, best, port))
                                        best = f;
        }
        return best;
}

static void flow_evict(Server *s, UdpFlow *f, const char *why) {
        char buf[SOCKADDR_STR_MAX];

        if (!f)
                return;
        if (ratelimit_below(&s->udp_log))
                log_conn(LOG_INFO, f->session ? f->session->id : NULL, socket_address_format(&f->peer, buf),
                         f->port->port, "UDP port %u: %s; the flow of %s (%s) makes room.", f->port->port, why, buf,
                         f->answered ? "the least recently heard" : "never answered");
        s->manager->udp.evicted++;
        flow_free(f);
}

/* A datagram from a peer without a flow: a new one, if the lists and a client allow, making room
 * when a limit is reached. */
static UdpFlow *flow_new(UdpPort *p, const SocketAddress *peer, const SocketAddress *local, unsigned bucket) {
        Server *s = p->server;
        char buf[SOCKADDR_STR_MAX];
        unsigned same = 0;
        UdpFlow *f;
        Session *x;
        int r;

        if (!access_list_allows(&server_def(s)->access, p->scope, peer)) {
                server_note_refused(s, p->port, peer);
                return NULL;
        }
        x = udp_session_for_port(s, p);
        if (!x || !session_allows(x, p->scope, peer))
                return NULL;
        /* No stream to open (its TCP connections take the rest): evicting would free none now
         * (a reset stream counts until it is gone), so nothing is evicted for nothing. */
        MuxStats st;
        mux_get_stats(x->mux, &st);
        if (st.active_streams >= server_def(s)->max_streams) {
                if (ratelimit_below(&s->udp_log))
                        log_conn(LOG_WARNING, x->id, socket_address_format(peer, buf), p->port,
                                 "UDP port %u: client %s has MaxStreamsPerClient=%u streams open; no flow for %s.",
                                 p->port, x->id, server_def(s)->max_streams, buf);
                return NULL;
        }
        for (unsigned b = 0; b < UDP_BUCKETS; b++)
                for (UdpFlow *g = p->buckets[b]; g; g = g->next)
                        same += source_equal(&g->peer, peer);
        if (same >= UDP_FLOWS_PER_SOURCE)
                flow_evict(s, flow_victim(s, p, p, NULL, peer), "one source has 64 flows");
        if (p->n_flows >= UDP_FLOWS_PER_PORT)
                flow_evict(s, flow_victim(s, p, p, NULL, NULL), "1024 flows open");
        if (x->n_udp_flows >= session_flow_limit(s))
                flow_evict(s, flow_victim(s, p, NULL, x, NULL), "the client's flows take half its streams");
        f = new0(UdpFlow, 1);
        if (!f)
                return NULL;
        f->port = p;
        f->peer = *peer;
        f->local = *local;
        f->last = now_cached(s);
        r = flow_open(f, x);
        if (r < 0) {
                if (ratelimit_below(&s->udp_log))
                        log_conn(LOG_WARNING, x->id, socket_address_format(peer, buf), p->port,
                                 "UDP port %u: cannot open a stream to client %s for %s: %s", p->port, x->id, buf,
                                 strerror(-r));
                free(f);
                return NULL;
        }
        f->session = x;
        x->n_udp_flows++;
        p->n_flows++;
        s->manager->udp.flows++;
        s->manager->udp.flows_total++;
        LIST_PREPEND(p->buckets[bucket], f);
        log_debug("UDP port %u: flow of %s -> client %s", p->port, socket_address_format(peer, buf), x->id);
        return f;
}

/* Into the tunnel as one capsule, its head written just before the payload (no copy), or
 * dropped when the stream holds enough already. */
static void flow_send(UdpFlow *f, uint8_t *payload, size_t n) {
        Manager *m = port_manager(f->port);
        uint8_t head[CAPSULE_DATAGRAM_SIZE(0)];
        size_t k;

        if (!f->stream) {
                drop(f->port->server, UDP_DROP_NO_FLOW);
                return;
        }
        if (mux_stream_full(f->stream)) {
                drop(f->port->server, UDP_DROP_FULL);
                return;
        }
        k = capsule_datagram_header(head, n);
        memcpy(payload - k, head, k);
        if (mux_stream_write(f->stream, payload - k, k + n) < 0) {
                drop(f->port->server, UDP_DROP_ERROR);
                return;
        }
        m->udp.datagrams_out++;
        m->udp.bytes_out += n;
}

/* The destination address of a datagram (IP_PKTINFO/IPV6_PKTINFO); len 0 when absent. */
static void datagram_local(struct msghdr *mh, SocketAddress *ret) {
        *ret = (SocketAddress) {};
        for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c))
                if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
                        struct in_pktinfo pi;
                        memcpy(&pi, CMSG_DATA(c), sizeof(pi));
                        ret->in.sin_family = AF_INET;
                        ret->in.sin_addr = pi.ipi_addr;
                        ret->len = sizeof(ret->in);
                } else if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO) {
                        struct in6_pktinfo pi;
                        memcpy(&pi, CMSG_DATA(c), sizeof(pi));
                        ret->in6.sin6_family = AF_INET6;
                        ret->in6.sin6_addr = pi.ipi6_addr;
                        ret->len = sizeof(ret->in6);
                }
}

static int udp_port_handler(sd_event_source *src, int fd, uint32_t revents, void *userdata) {
        UdpPort *p = userdata;
        Server *s = p->server;
        uint8_t *payload = udp_buf + CAPSULE_DATAGRAM_SIZE(0);

        for (unsigned i = 0; i < UDP_BATCH; i++) {
                union {
                        struct cmsghdr h;
                        uint8_t buf[CMSG_SPACE(sizeof(struct in6_pktinfo)) + CMSG_SPACE(sizeof(struct in_pktinfo))];
                } control;
                SocketAddress peer = {}, local;
                struct iovec iov = { .iov_base = payload, .iov_len = UDP_RECV_MAX };
                struct msghdr mh = { .msg_name = &peer.sa, .msg_namelen = sizeof(peer.storage), .msg_iov = &iov,
                                     .msg_iovlen = 1, .msg_control = control.buf,
                                     .msg_controllen = sizeof(control.buf) };
                unsigned bucket;
                UdpFlow *f;
                ssize_t n;

                n = recvmsg(fd, &mh, MSG_DONTWAIT | MSG_TRUNC);
                if (n < 0) {
                        if (errno == EAGAIN || errno == EINTR)
                                break;
                        log_debug("UDP port %u: %m", p->port);
                        continue; /* an ICMP error queued on the socket: the next datagram */
                }
                peer.len = mh.msg_namelen;
                if (peer.sa.sa_family != AF_INET && peer.sa.sa_family != AF_INET6)
                        continue;
                if ((size_t) n > CAPSULE_PAYLOAD_MAX || (mh.msg_flags & MSG_TRUNC)) {
                        drop(s, UDP_DROP_SIZE);
                        continue;
                }
                datagram_local(&mh, &local);
                bucket = peer_bucket(&peer);
                /* A flow is the visitor and the address it sent to: a datagram (spoofed, maybe) to
                 * another of our addresses does not change where a flow's replies come from. */
                for (f = p->buckets[bucket]; f; f = f->next)
                        if (peer_equal(&f->peer, &peer) && local_equal(&f->local, &local))
                                break;
                if (!f)
                        f = flow_new(p, &peer, &local, bucket);
                if (!f) {
                        drop(s, UDP_DROP_NO_FLOW);
                        continue;
                }
                if (f->stream) { /* a refused flow ends in its time, whatever its visitor sends */
                        f->last = now_cached(s);
                        f->assured = f->answered;
                }
                flow_send(f, payload, (size_t) n);
        }
        return 0;
}

/* Every flow whose visitor was silent for UDPIdleSec= ends (for a flow never answered, at most
 * UDP_UNANSWERED_USEC); so do refused ones, from their refusal. */
static int udp_sweep(sd_event_source *src, uint64_t usec, void *userdata) {
        Server *s = userdata;
        uint64_t now = now_cached(s), answered = server_def(s)->udp_idle_usec,
                 unanswered = MIN(answered, UDP_UNANSWERED_USEC);

        for (UdpPort *p = s->udp_ports; p; p = p->next)
                for (unsigned b = 0; b < UDP_BUCKETS; b++)
                        for (UdpFlow *f = p->buckets[b], *next; f; f = next) {
                                next = f->next;
                                if (now >= f->last + (f->answered ? answered : unanswered))
                                        flow_free(f);
                        }
        (void) sd_event_source_set_time_relative(src, UDP_SWEEP_USEC);
        return 0;
}

static int udp_sweep_start(Server *s) {
        int r;

        if (s->udp_timer)
                return 0;
        if (hash_seed == 0)
                (void) random_bytes(&hash_seed, sizeof(hash_seed));
        r = sd_event_add_time_relative(s->manager->event, &s->udp_timer, CLOCK_MONOTONIC, UDP_SWEEP_USEC,
                                       UDP_SWEEP_USEC / 4, udp_sweep, s);
        if (r < 0)
                return r;
        (void) sd_event_source_set_description(s->udp_timer, "server-udp-sweep");
        return sd_event_source_set_enabled(s->udp_timer, SD_EVENT_ON);
}

UdpPort *udp_port_find(Server *s, uint16_t port) {
        for (UdpPort *p = s->udp_ports; p; p = p->next)
                if (p->port == port)
                        return p;
        return NULL;
}

static UdpPort *udp_port_free(UdpPort *p) {
        if (!p)
                return NULL;
        for (unsigned b = 0; b < UDP_BUCKETS; b++)
                while (p->buckets[b])
                        flow_free(p->buckets[b]);
        sd_event_source_disable_unref(p->io);
        safe_close(p->fd);
        free(p);
        return NULL;
}

/* Where each datagram came to: replies must leave from there. Room for bursts (the kernel caps
 * it at net.core.rmem_max; systemd's sockets get ReceiveBuffer= from the generator). */
static void udp_socket_options(int fd, bool ours) {
        int one = 1, rcvbuf = 4 << 20;
        if (ours)
                (void) setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
        (void) setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &one, sizeof(one));
        (void) setsockopt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &one, sizeof(one));
}

static UdpPort *udp_port_new(Server *s, uint16_t port, int fd, bool ours) {
        UdpPort *p = new0(UdpPort, 1);
        char desc[32];

        if (!p)
                return NULL;
        p->server = s;
        p->port = port;
        p->fd = fd;
        snprintf(p->scope, sizeof(p->scope), "%u", port);
        udp_socket_options(fd, ours);
        if (sd_event_add_io(s->manager->event, &p->io, fd, EPOLLIN, udp_port_handler, p) < 0 ||
            udp_sweep_start(s) < 0) {
                p->fd = -1; /* the caller's */
                return udp_port_free(p);
        }
        snprintf(desc, sizeof(desc), "server-udp-%u", port);
        (void) sd_event_source_set_description(p->io, desc);
        p->next = s->udp_ports;
        s->udp_ports = p;
        return p;
}

static int udp_port_ref(Server *s, uint16_t port, char **ret_error) {
        UdpPort *p = udp_port_find(s, port);
        SocketAddress a = server_def(s)->data_listen;
        char buf[SOCKADDR_STR_MAX];
        int fd, zero = 0;

        if (p) {
                if (p->refs++ == 0) {
                        (void) sd_event_source_set_enabled(p->io, SD_EVENT_ON);
                        log_conn(LOG_INFO, NULL, NULL, port, "Reading UDP port %u (socket from systemd).", port);
                }
                return 0;
        }
        socket_address_set_port(&a, port);
        fd = socket(a.sa.sa_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        if (a.sa.sa_family == AF_INET6 && IN6_IS_ADDR_UNSPECIFIED(&a.in6.sin6_addr))
                (void) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
        if (bind(fd, &a.sa, a.len) < 0) {
                int r = -errno;
                safe_close(fd);
                if (asprintf(ret_error, "cannot bind UDP %s: %s", socket_address_format(&a, buf), strerror(-r)) < 0)
                        *ret_error = NULL;
                return r;
        }
        p = udp_port_new(s, port, fd, true);
        if (!p) {
                safe_close(fd);
                return -ENOMEM;
        }
        p->refs = 1;
        log_conn(LOG_INFO, NULL, NULL, port, "Listening on UDP %s for tunneled datagrams.",
                 socket_address_format(&a, buf));
        return 0;
}

static void udp_port_unref(Server *s, uint16_t port) {
        for (UdpPort **pp = &s->udp_ports; *pp; pp = &(*pp)->next) {
                UdpPort *p = *pp;
                if (p->port != port)
                        continue;
                if (p->refs == 0 || --p->refs > 0)
                        return;
                if (p->from_systemd) {
                        /* systemd's: unread, datagrams wait in its buffer until a client offers it. */
                        (void) sd_event_source_set_enabled(p->io, SD_EVENT_OFF);
                        return;
                }
                *pp = p->next;
                log_conn(LOG_INFO, NULL, NULL, port, "UDP port %u closed: no client offers it any more.", port);
                udp_port_free(p);
                return;
        }
}

int udp_port_add_from_systemd(Server *s, uint16_t port, int fd) {
        UdpPort *p = udp_port_new(s, port, fd, false);

        if (!p) {
                safe_close(fd);
                return -ENOMEM;
        }
        p->from_systemd = true;
        (void) sd_event_source_set_enabled(p->io, SD_EVENT_OFF); /* until a client offers it */
        log_conn(LOG_INFO, NULL, NULL, port, "Using the UDP socket passed by systemd for port %u.", port);
        return 0;
}

static void port_flows_end(UdpPort *p, Session *x) {
        for (unsigned b = 0; b < UDP_BUCKETS; b++)
                for (UdpFlow *f = p->buckets[b], *next; f; f = next) {
                        next = f->next;
                        if (f->session == x)
                                flow_free(f);
                }
}

/* Reads the port while a live session offers it; while only held ones do (ResumeSec=), datagrams
 * wait in the socket's buffer, as connections wait in a listener's queue. */
static void udp_port_update(Server *s, uint16_t port) {
        UdpPort *p = udp_port_find(s, port);
        bool live = false;

        if (!p || p->refs == 0)
                return;
        for (Session *x = s->sessions; x && !live && !s->udp_draining; x = x->next)
                live = !x->held && session_offers_udp(x, port);
        (void) sd_event_source_set_enabled(p->io, live ? SD_EVENT_ON : SD_EVENT_OFF);
}

void session_udp_update(Session *x) {
        for (size_t i = 0; i < x->n_udp_ports; i++)
                udp_port_update(x->server, x->udp_ports[i]);
}

void session_udp_take(Session *x, Session *held) {
        if (x->n_udp_ports > 0 || held->n_udp_ports == 0)
                return;
        x->udp_ports = TAKE_PTR(held->udp_ports);
        x->n_udp_ports = held->n_udp_ports;
        held->n_udp_ports = 0;
        session_udp_update(x);
}

void udp_flows_recheck(Server *s) {
        const Definition *d = server_def(s);
        unsigned n = 0;

        for (UdpPort *p = s->udp_ports; p; p = p->next)
                for (unsigned b = 0; b < UDP_BUCKETS; b++)
                        for (UdpFlow *f = p->buckets[b], *next; f; f = next) {
                                next = f->next;
                                if (access_list_allows(&d->access, p->scope, &f->peer) &&
                                    (!f->session || access_list_allows(&f->session->access, p->scope, &f->peer)))
                                        continue;
                                flow_free(f);
                                n++;
                        }
        if (n > 0)
                log_info("UDP: %u flows ended, the new AllowFrom=/DenyFrom= refuse their visitors.", n);
}

void session_udp_flows_end(Session *x) {
        for (UdpPort *p = x->server->udp_ports; p && x->n_udp_flows > 0; p = p->next)
                port_flows_end(p, x);
}

void session_udp_release(Session *x) {
        session_udp_flows_end(x);
        for (size_t i = 0; i < x->n_udp_ports; i++) {
                udp_port_unref(x->server, x->udp_ports[i]);
                udp_port_update(x->server, x->udp_ports[i]);
        }
        x->udp_ports = mfree(x->udp_ports);
        x->n_udp_ports = 0;
}

void udp_ports_drain(Server *s) {
        /* Flows have no end of their own to wait for: they end now, and the peers' next
         * datagrams wait in systemd's sockets for the next process. */
        s->udp_draining = true;
        for (UdpPort *p = s->udp_ports; p; p = p->next) {
                (void) sd_event_source_set_enabled(p->io, SD_EVENT_OFF);
                for (unsigned b = 0; b < UDP_BUCKETS; b++)
                        while (p->buckets[b])
                                flow_free(p->buckets[b]);
        }
}

void udp_ports_free(Server *s) {
        while (s->udp_ports) {
                UdpPort *p = s->udp_ports;
                s->udp_ports = p->next;
                udp_port_free(p);
        }
        s->udp_timer = sd_event_source_disable_unref(s->udp_timer);
}

static bool has_udp_port(const uint16_t *ports, size_t n, uint16_t port) {
        for (size_t i = 0; i < n; i++)
                if (ports[i] == port)
                        return true;
        return false;
}

void session_control_udp_ports(Session *x, Mux *m, const char *list) {
        Server *s = x->server;
        const Definition *d = server_def(s);
        _cleanup_free_ uint16_t *ports = NULL;
        _cleanup_free_ char *why = NULL;
        char reply[MAX_OFFERED_PORTS * 6 + 64];
        size_t n = 0, o;
        int r;

        if (d->mode != MODE_TCP) {
                (void) mux_send_control(m, "error udp-ports: this server runs in HTTP mode: it opens no ports");
                return;
        }
        if (s->udp_draining) {
                (void) mux_send_control(m, "error udp-ports: the exit server is stopping");
                return;
        }
        list += strspn(list, " \t");
        if (*list && parse_offered_ports(list, &ports, &n) < 0) {
                (void) mux_send_control(m, "error udp-ports: must list up to 256 distinct ports, comma-separated");
                return;
        }
        for (size_t i = 0; i < n; i++)
                if (!definition_udp_port_allowed(d, ports[i])) {
                        snprintf(reply, sizeof(reply),
                                 d->n_allow_udp_ports == 0
                                         ? "error udp-ports: this exit server carries no UDP (AllowUDPPorts= is empty)"
                                         : "error udp-ports: UDP port %u is not in AllowUDPPorts=",
                                 ports[i]);
                        log_conn(LOG_WARNING, x->id, x->remote, 0, "Client %s: UDP offer refused: %s.", x->id,
                                 reply + 16);
                        (void) mux_send_control(m, reply);
                        return;
                }
        /* Bind everything new first: on failure nothing has changed. */
        for (size_t i = 0; i < n; i++) {
                if (has_udp_port(x->udp_ports, x->n_udp_ports, ports[i]))
                        continue;
                r = udp_port_ref(s, ports[i], &why);
                if (r < 0) {
                        while (i > 0)
                                if (!has_udp_port(x->udp_ports, x->n_udp_ports, ports[--i]))
                                        udp_port_unref(s, ports[i]);
                        snprintf(reply, sizeof(reply), "error udp-ports: %s", why ?: strerror(-r));
                        log_conn(LOG_WARNING, x->id, x->remote, 0, "Client %s: UDP offer refused: %s.", x->id,
                                 reply + 16);
                        (void) mux_send_control(m, reply);
                        return;
                }
        }
        /* Ports that went away: their flows of this client end, and the ports are given up. */
        for (size_t i = 0; i < x->n_udp_ports; i++)
                if (!has_udp_port(ports, n, x->udp_ports[i])) {
                        UdpPort *p = udp_port_find(s, x->udp_ports[i]);
                        if (p)
                                port_flows_end(p, x);
                        udp_port_unref(s, x->udp_ports[i]);
                }
        free(x->udp_ports);
        x->udp_ports = TAKE_PTR(ports);
        x->n_udp_ports = n;
        session_udp_update(x);
        o = (size_t) snprintf(reply, sizeof(reply), "ok udp-ports ");
        for (size_t i = 0; i < n; i++)
                o += (size_t) snprintf(reply + o, sizeof(reply) - o, "%s%u", i ? "," : "", x->udp_ports[i]);
        if (n > 0)
                log_conn(LOG_INFO, x->id, x->remote, 0, "Client %s offers UDP ports %s.", x->id, reply + 13);
        (void) mux_send_control(m, reply);
        manager_emit_changed(s->manager, "Clients");
        manager_emit_changed(s->manager, "Ports");
}
