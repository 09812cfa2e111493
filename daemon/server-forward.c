// SPDX-License-Identifier: LGPL-2.1-or-later
/* A tunnel client's LocalForward=: its "forward ID HOST:PORT" control message asks the exit
 * server to dial HOST:PORT; AllowForwardTo= decides (nothing by default: a client must never
 * turn the exit server into an open proxy). The answer comes at once, in order with every
 * other: "ok forward ID" (dialling) or "error forward ID REASON". The dial runs without holding
 * up the loop (the resolver, a non-blocking connect); once connected, the socket becomes a
 * CONNECT stream to the client carrying x-inlets-forward: ID; a failed dial is the notice
 * "notice forward ID REASON". docs/protocol.md, section 6. */

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "manager.h"
#include "parse-util.h"
#include "ratelimit.h"
#include "resolve.h"
#include "server-internal.h"
#include "string-util.h"

/* Dials in progress per session and in all (a token holder may connect as many ClientIDs), and
 * the time each may take (DNS included). */
#define FORWARDS_MAX 64
#define FORWARDS_TOTAL_MAX 256
#define FORWARD_TIMEOUT_USEC (30 * USEC_PER_SEC)

struct Forward {
        Session *session;
        Forward *prev, *next;
        uint32_t id;
        char *host;
        uint16_t port;
        ResolveQuery *query;
        SocketAddress *addrs;
        size_t n_addrs, next_addr;
        int fd, error;
        sd_event_source *io, *timer;
};

static Forward *forward_free(Forward *f) {
        if (!f)
                return NULL;
        LIST_REMOVE(f->session->forwards, f);
        f->session->n_forwards--;
        f->session->server->n_forwards--;
        resolve_query_cancel(f->query);
        sd_event_source_disable_unref(f->io);
        sd_event_source_disable_unref(f->timer);
        safe_close(f->fd);
        free(f->addrs);
        free(f->host);
        free(f);
        return NULL;
}

void session_forwards_free(Session *x) {
        while (x->forwards)
                forward_free(x->forwards);
}

/* "error forward ID REASON" (the answer) or "notice forward ID REASON" (a failed dial). */
static void forward_answer(Session *x, const char *kind, uint32_t id, const char *format, ...) _printf_(4, 5);
static void forward_answer(Session *x, const char *kind, uint32_t id, const char *format, ...) {
        char msg[512];
        va_list ap;
        int n;

        n = snprintf(msg, sizeof(msg), "%s forward %" PRIu32 " ", kind, id);
        va_start(ap, format);
        vsnprintf(msg + n, sizeof(msg) - (size_t) n, format, ap);
        va_end(ap);
        (void) mux_send_control(x->mux, msg);
}

/* The dial is over: a stream with the socket, or the error. Frees f. */
static void forward_done(Forward *f, int fd) {
        Session *x = f->session;
        char target[300];
        int r;

        snprintf(target, sizeof(target), strchr(f->host, ':') ? "[%s]:%u" : "%s:%u", f->host, f->port);
        if (fd < 0) {
                log_conn(LOG_INFO, x->id, x->remote, 0, "Client %s: forward to %s failed: %s.", x->id, target,
                         strerror(-f->error));
                forward_answer(x, "notice", f->id, "the exit server cannot connect to %s: %s", target,
                               strerror(-f->error));
                forward_free(f);
                return;
        }
        r = mux_open_forward(x->mux, fd, target, f->id, x, NULL);
        if (r < 0) {
                forward_answer(x, "notice", f->id, "%s", r == -EBUSY ? "MaxStreamsPerClient= streams are open"
                                                                     : strerror(-r));
                forward_free(f);
                return;
        }
        log_conn(LOG_INFO, x->id, x->remote, 0, "Client %s: forwarding to %s.", x->id, target);
        forward_free(f);
}

static int forward_next(Forward *f);

static int forward_connected(sd_event_source *src, int fd, uint32_t revents, void *userdata) {
        Forward *f = userdata;
        int err = 0;
        socklen_t l = sizeof(err);

        (void) getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &l);
        f->io = sd_event_source_disable_unref(f->io);
        if (err == 0) {
                forward_done(f, TAKE_FD(f->fd));
                return 0;
        }
        f->error = -err;
        f->fd = safe_close(f->fd);
        if (forward_next(f) < 0)
                forward_done(f, -1);
        return 0;
}

/* Starts connecting to the next address; <0 when none is left. */
static int forward_next(Forward *f) {
        bool connected;
        int fd, r;

        fd = socket_connect_next(f->addrs, f->n_addrs, &f->next_addr, f->port, &connected);
        if (fd < 0) {
                if (fd != -EHOSTUNREACH || f->error == 0)
                        f->error = fd;
                return fd;
        }
        if (connected) {
                forward_done(f, fd);
                return 0;
        }
        r = sd_event_add_io(f->session->server->manager->event, &f->io, fd, EPOLLOUT, forward_connected, f);
        if (r < 0) {
                safe_close(fd);
                f->error = r;
                return r;
        }
        (void) sd_event_source_set_description(f->io, "server-forward-dial");
        f->fd = fd;
        return 0;
}

static void forward_resolved(int error, SocketAddress *addrs, size_t n, void *userdata) {
        Forward *f = userdata;

        f->query = NULL;
        if (error < 0) {
                free(addrs);
                f->error = error == -EHOSTUNREACH ? -ENXIO : error;
                forward_answer(f->session, "notice", f->id, "the exit server cannot resolve %s: %s", f->host,
                               resolve_strerror(error));
                forward_free(f);
                return;
        }
        f->addrs = addrs;
        f->n_addrs = n;
        if (forward_next(f) < 0)
                forward_done(f, -1);
}

static int forward_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        Forward *f = userdata;

        f->error = -ETIMEDOUT;
        f->fd = safe_close(f->fd);
        forward_done(f, -1);
        return 0;
}

/* "forward ID HOST:PORT". */
void session_control_forward(Session *x, Mux *m, const char *args) {
        const Definition *d = server_def(x->server);
        _cleanup_free_ char *host = NULL;
        SocketAddress *l = NULL;
        uint32_t id;
        uint16_t port;
        size_t k = 0;
        Forward *f;
        int r;

        if (forward_request_parse(args, &id, &host, &port) < 0) {
                (void) mux_send_control(m, "error forward: expected \"forward ID HOST:PORT\"");
                return;
        }
        if (!definition_forward_allowed(d, host, port)) {
                if (ratelimit_below(&x->server->refused_log))
                        log_conn(LOG_NOTICE, x->id, x->remote, 0,
                                 "Client %s asked to forward to %s port %u: not in AllowForwardTo=.", x->id, host, port);
                forward_answer(x, "error", id, "%s port %u is not in the exit server's AllowForwardTo=", host,
                               port);
                return;
        }
        if (x->n_forwards >= FORWARDS_MAX || x->server->n_forwards >= FORWARDS_TOTAL_MAX) {
                forward_answer(x, "error", id, "too many forwards being dialled (%u for this client, %u in all)",
                               FORWARDS_MAX, FORWARDS_TOTAL_MAX);
                return;
        }
        f = new0(Forward, 1);
        if (!f) {
                forward_answer(x, "error", id, "out of memory");
                return;
        }
        f->session = x;
        f->id = id;
        f->host = TAKE_PTR(host);
        f->port = port;
        f->fd = -1;
        LIST_PREPEND(x->forwards, f);
        x->n_forwards++;
        x->server->n_forwards++;
        r = sd_event_add_time_relative(x->server->manager->event, &f->timer, CLOCK_MONOTONIC, FORWARD_TIMEOUT_USEC, 0,
                                       forward_timeout, f);
        if (r < 0) {
                forward_answer(x, "error", f->id, "%s", strerror(-r));
                forward_free(f);
                return;
        }
        {
                char ok[64];
                snprintf(ok, sizeof(ok), "ok forward %" PRIu32, f->id);
                (void) mux_send_control(m, ok);
        }
        (void) sd_event_source_set_description(f->timer, "server-forward-timeout");
        r = resolver_query(x->server->manager->resolver, f->host, forward_resolved, f, &l, &k, &f->query);
        if (r < 0)
                return forward_resolved(r, NULL, 0, f);
        if (r > 0)
                return forward_resolved(0, l, k, f);
}
