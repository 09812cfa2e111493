// SPDX-License-Identifier: LGPL-2.1-or-later
/* AcceptProxyProtocol=, ControlAcceptProxyProtocol=: the PROXY header in front of a connection
 * from a trusted load balancer, read before anything else touches the connection; see
 * proxy-accept.h. */

#include <assert.h>
#include <stdlib.h>
#include <sys/socket.h>

#include "access.h"
#include "log.h"
#include "macro.h"
#include "proxy-accept.h"
#include "proxy-protocol.h"
#include "time-util.h"

struct ProxyWait {
        ProxyGate *gate;
        ProxyWait *prev, *next;
        int fd;
        SocketAddress peer;       /* the load balancer */
        sd_event_source *io, *timer;
};

static ProxyWait *proxy_wait_free(ProxyWait *w) {
        if (!w)
                return NULL;
        LIST_REMOVE(w->gate->waits, w);
        w->gate->n_waits--;
        sd_event_source_disable_unref(w->io);
        sd_event_source_disable_unref(w->timer);
        safe_close(w->fd);
        free(w);
        return NULL;
}

static void proxy_wait_refuse(ProxyWait *w, const char *why) {
        ProxyGate *g = w->gate;

        (*g->refused)++;
        if (ratelimit_below(&g->log)) {
                char buf[SOCKADDR_STR_MAX];
                socket_address_format(&w->peer, buf);
                log_conn(LOG_WARNING, NULL, buf, 0, "%s: %s from %s (%sAcceptProxyProtocol=); closed.", g->what,
                         why, buf, g->control ? "Control" : "");
        }
        proxy_wait_free(w);
}

/* The header is read with MSG_PEEK, so nothing past it is ever taken from the socket: the
 * connection's own reader finds the visitor's first bytes where they were. The source is
 * edge-triggered, so a header still incomplete waits for the next segment, not in a loop. */
static int proxy_wait_io(sd_event_source *src, int fd, uint32_t revents, void *userdata) {
        ProxyWait *w = userdata;
        ProxyGate *g = w->gate;
        uint8_t buf[PROXY_V2_MAX];
        ProxyHeader h;
        ssize_t n;
        int r;

        n = recv(w->fd, buf, sizeof(buf), MSG_PEEK | MSG_DONTWAIT);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
                return 0;
        if (n <= 0) {
                proxy_wait_free(w); /* gone before its header: nothing to count */
                return 0;
        }
        r = proxy_header_parse(buf, (size_t) n, &h);
        if (r == 0 && (revents & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) == 0)
                return 0;
        if (r <= 0) {
                proxy_wait_refuse(w, r == 0 ? "an incomplete PROXY header" : "no valid PROXY header");
                return 0;
        }
        /* Take exactly the header off the socket. */
        if (recv(w->fd, buf, (size_t) r, MSG_DONTWAIT) != r) {
                proxy_wait_refuse(w, "a PROXY header that could not be read");
                return 0;
        }

        int cfd = TAKE_FD(w->fd);
        SocketAddress peer = h.has_addresses ? h.source : w->peer;
        proxy_wait_free(w);
        return g->next(cfd, &peer, true, g->userdata);
}

static int proxy_wait_timeout(sd_event_source *src, uint64_t usec, void *userdata) {
        proxy_wait_refuse(userdata, "no PROXY header in time");
        return 0;
}

static int proxy_wait_new(ProxyGate *g, int cfd, const SocketAddress *peer) {
        const Definition *d = g->manager->def;
        ProxyWait *w;
        int r;

        if (g->n_waits >= PROXY_WAIT_MAX) {
                /* The oldest has had the longest to send a header that a load balancer sends
                 * at once. */
                ProxyWait *oldest = g->waits;
                while (oldest->next)
                        oldest = oldest->next;
                proxy_wait_refuse(oldest, "no PROXY header while others waited");
        }
        w = new0(ProxyWait, 1);
        if (!w) {
                safe_close(cfd);
                return log_oom();
        }
        *w = (ProxyWait) { .gate = g, .fd = cfd, .peer = *peer };
        LIST_PREPEND(g->waits, w);
        g->n_waits++;

        r = sd_event_add_io(g->manager->event, &w->io, cfd, EPOLLIN | EPOLLRDHUP | EPOLLET, proxy_wait_io, w);
        if (r >= 0)
                r = sd_event_add_time_relative(g->manager->event, &w->timer, CLOCK_MONOTONIC,
                                               d->handshake_timeout_usec, 0, proxy_wait_timeout, w);
        if (r < 0) {
                log_warning_errno(r, "%s: cannot wait for a PROXY header: %m", g->what);
                proxy_wait_free(w);
                return 0;
        }
        (void) sd_event_source_set_description(w->io, "proxy-header");
        (void) sd_event_source_set_description(w->timer, "proxy-header-timer");
        return 0;
}

int proxy_gate_accept(int cfd, const SocketAddress *peer, void *userdata) {
        ProxyGate *g = userdata;
        const AccessList *trusted;

        assert(g);
        assert(peer);

        trusted = g->control ? &g->manager->def->control_accept_proxy : &g->manager->def->accept_proxy;
        if (trusted->n_rules == 0 || !access_list_allows(trusted, NULL, peer))
                return g->next(cfd, peer, false, g->userdata);
        return proxy_wait_new(g, cfd, peer);
}

void proxy_gate_init(ProxyGate *g, Manager *m, const char *what, bool control, uint64_t *refused,
                     proxy_accept_func_t next, void *userdata) {
        assert(g);
        assert(m);
        assert(what);
        assert(refused);
        assert(next);

        *g = (ProxyGate) {
                .manager = m,
                .what = what,
                .control = control,
                .refused = refused,
                .next = next,
                .userdata = userdata,
                .log = { .interval_usec = 10 * USEC_PER_SEC, .burst = 10 },
        };
}

void proxy_gate_done(ProxyGate *g) {
        assert(g);

        while (g->waits)
                proxy_wait_free(g->waits);
}
