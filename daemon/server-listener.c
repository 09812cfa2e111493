// SPDX-License-Identifier: LGPL-2.1-or-later
/* The exit server's public ports (TCP mode): a Listener per port, shared round-robin by the
 * sessions that offer it and closed when the last of them ends. */

#include <arpa/inet.h>
#include <stdio.h>
#include <sys/socket.h>

#include "access.h"
#include "log.h"
#include "macro.h"
#include "proxy-accept.h"
#include "ratelimit.h"
#include "server-internal.h"
#include "socket-util.h"

/* A listener bound to one address gives every connection that local address: format it once
 * instead of a getsockname() per connection. */
static void listener_note_address(Listener *l) {
        SocketAddress a = { .len = sizeof(a.storage) };

        assert(l);
        l->local[0] = 0;
        if (getsockname(l->fd, &a.sa, &a.len) < 0)
                return;
        if ((a.sa.sa_family == AF_INET && a.in.sin_addr.s_addr != htonl(INADDR_ANY)) ||
            (a.sa.sa_family == AF_INET6 && !IN6_IS_ADDR_UNSPECIFIED(&a.in6.sin6_addr)))
                socket_address_format(&a, l->local);
}

Listener *listener_free(Listener *l) {
        if (!l)
                return NULL;
        proxy_gate_done(&l->gate);
        sd_event_source_disable_unref(l->io);
        safe_close(l->fd);
        free(l);
        return NULL;
}

Listener *listener_find(Server *s, uint16_t port) {
        assert(s);
        for (Listener *l = s->listeners; l; l = l->next)
                if (l->port == port)
                        return l;
        return NULL;
}

void listener_unref(Server *s, uint16_t port) {
        Listener **p = &s->listeners;

        assert(s);
        for (; *p; p = &(*p)->next)
                if ((*p)->port == port) {
                        Listener *l = *p;
                        if (l->refs == 0 || --l->refs > 0)
                                return;
                        if (l->from_systemd) {
                                /* Not ours to close: stop accepting, and connections wait in the
                                 * queue until a client offers the port again. */
                                (void) sd_event_source_set_enabled(l->io, SD_EVENT_OFF);
                                log_conn(LOG_INFO, NULL, NULL, port,
                                         "Port %u: no client offers it now; connections wait in its queue.", port);
                                return;
                        }
                        *p = l->next;
                        log_conn(LOG_INFO, NULL, NULL, port, "Port %u closed: no client offers it any more.", port);
                        listener_free(l);
                        return;
                }
}

void listener_update(Server *s, uint16_t port) {
        Listener *l = listener_find(s, port);
        bool live;

        if (l && l->refs > 0 && l->io) {
                live = l->refs > l->held_refs;
                if (live == !l->paused)
                        return;
                l->paused = !live;
                (void) sd_event_source_set_enabled(l->io, live ? SD_EVENT_ON : SD_EVENT_OFF);
                log_conn(LOG_INFO, NULL, NULL, l->port,
                         live ? "Port %u: accepting again." : "Port %u: its client's connection is lost; new "
                                                              "connections wait in the queue while it may resume.",
                         l->port);
        }
}

/* One public connection (peer the visitor: see proxy-accept.h): a new stream to the next
 * session that offers the port. */
static int listener_accept(int cfd, const SocketAddress *peer, bool via_proxy, void *userdata) {
        Listener *l = userdata;
        Server *s = l->server;
        SocketAddress local = { .len = sizeof(local.storage) };
        char peer_s[SOCKADDR_STR_MAX], local_s[SOCKADDR_STR_MAX];
        Session *x;
        int r;

        /* Read from the definition now, so a reload applies to the next connection. Closed
         * before any stream exists: not one byte of it reaches a client. */
        if (!access_list_allows(&server_def(s)->access, l->scope, peer)) {
                safe_close(cfd);
                server_note_refused(s, l->port, peer);
                return 0;
        }
        socket_address_format(peer, peer_s);
        if (l->local[0])
                strcpy(local_s, l->local);
        else {
                (void) getsockname(cfd, &local.sa, &local.len);
                socket_address_format(&local, local_s);
        }

        x = session_for_port(s, l);
        if (!x || !session_allows(x, l->scope, peer)) {
                safe_close(cfd);
                return 0;
        }
        r = mux_open_stream(x->mux, cfd, local_s, peer_s, x, NULL);
        if (r == -EBUSY) {
                if (ratelimit_below(&s->busy_log))
                        log_warning("Port %u: client %s has MaxStreamsPerClient=%u streams open; refused %s.",
                                    l->port, x->id, server_def(s)->max_streams, peer_s);
        } else if (r < 0)
                log_warning_errno(r, "Port %u: cannot open a stream to client %s for %s: %m", l->port, x->id,
                                  peer_s);
        else
                log_debug("Port %u: %s -> client %s", l->port, peer_s, x->id);
        return 0;
}

static int listener_handler(sd_event_source *src, int fd, uint32_t revents, void *userdata) {
        Listener *l = userdata;

        accept_batch(fd, 64, proxy_gate_accept, &l->gate);
        return 0;
}

static int listener_watch(Listener *l) {
        char desc[32];
        int r;

        assert(l);
        assert(!l->io);
        r = sd_event_add_io(l->server->manager->event, &l->io, l->fd, EPOLLIN, listener_handler, l);
        if (r < 0)
                return r;
        snprintf(desc, sizeof(desc), "server-listen-%u", l->port);
        (void) sd_event_source_set_description(l->io, desc);
        return 0;
}

static Listener *listener_new(Server *s, uint16_t port) {
        Listener *l = new0(Listener, 1);

        if (!l)
                return NULL;
        l->server = s;
        l->port = port;
        l->fd = -1;
        snprintf(l->scope, sizeof(l->scope), "%u", port);
        snprintf(l->what, sizeof(l->what), "Port %u", port);
        proxy_gate_init(&l->gate, s->manager, l->what, false, &s->refused.proxy_header, listener_accept, l);
        return l;
}

int listener_ref(Server *s, uint16_t port, char **ret_error) {
        Listener *l = listener_find(s, port);
        SocketAddress a = server_def(s)->data_listen;
        char buf[SOCKADDR_STR_MAX];
        int r;

        assert(ret_error);
        if (l) {
                if (l->refs++ == 0) {
                        l->paused = false;
                        (void) sd_event_source_set_enabled(l->io, SD_EVENT_ON);
                        log_conn(LOG_INFO, NULL, NULL, port, "Accepting on port %u (socket from systemd).", port);
                }
                return 0;
        }
        l = listener_new(s, port);
        if (!l)
                return -ENOMEM;
        l->refs = 1;
        socket_address_set_port(&a, port);
        r = socket_listen_tcp(&a, &l->fd);
        if (r >= 0)
                listener_note_address(l);
        if (r < 0) {
                l->fd = -1;
                listener_free(l);
                if (asprintf(ret_error, "cannot listen on %s: %s", socket_address_format(&a, buf), strerror(-r)) < 0)
                        *ret_error = NULL;
                return r;
        }
        r = listener_watch(l);
        if (r < 0) {
                listener_free(l);
                return r;
        }
        l->next = s->listeners;
        s->listeners = l;
        log_conn(LOG_INFO, NULL, NULL, port, "Listening on %s for tunneled connections.",
                 socket_address_format(&a, buf));
        return 0;
}

int listener_add_from_systemd(Server *s, uint16_t port, int fd) {
        Listener *l;

        assert(s);
        assert(fd >= 0);
        l = listener_new(s, port);
        if (!l) {
                safe_close(fd);
                return -ENOMEM;
        }
        l->fd = fd;
        if (listener_watch(l) < 0) {
                listener_free(l);
                return -ENOMEM;
        }
        l->from_systemd = true;
        listener_note_address(l);
        (void) sd_event_source_set_enabled(l->io, SD_EVENT_OFF); /* until a client offers it */
        l->next = s->listeners;
        s->listeners = l;
        log_conn(LOG_INFO, NULL, NULL, port, "Using the socket passed by systemd for port %u.", port);
        return 0;
}

void listener_drain(Listener *l) {
        assert(l);
        proxy_gate_done(&l->gate);
        if (l->from_systemd)
                (void) sd_event_source_set_enabled(l->io, SD_EVENT_OFF);
        else {
                /* Ours: refuse at once rather than queue for a process that won't come. */
                l->io = sd_event_source_disable_unref(l->io);
                l->fd = safe_close(l->fd);
        }
}
