// SPDX-License-Identifier: LGPL-2.1-or-later
/* LocalForward= on the tunnel client: remote services brought local. Each listening address
 * takes connections; each asks the exit server, with a "forward ID HOST:PORT" control message,
 * to dial HOST:PORT (its AllowForwardTo= decides). The connection waits, unread, until the
 * server opens a CONNECT stream carrying x-inlets-forward: ID (its dial succeeded): then the
 * socket is the stream's. A refusal ("error forward ID ..."), a failed dial ("notice forward
 * ID ..."), the session's end or FORWARD_WAIT_USEC close it. docs/protocol.md, section 6. */

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include "client-forward.h"
#include "log.h"
#include "ratelimit.h"
#include "socket-util.h"
#include "string-util.h"
#include "time-util.h"

/* Connections waiting for their stream, and for how long (the server gives its dial 30 s). */
#define FORWARD_WAITING_MAX 256
#define FORWARD_WAIT_USEC (40 * USEC_PER_SEC)
/* Requests not answered yet, whether or not their local connection is still there: each is a
 * control message the session counts until its answer (at most 1024, some kept for others). */
#define FORWARD_OUTSTANDING_MAX 512

typedef struct Waiting Waiting;

typedef struct Listener {
        ClientForwards *owner;
        SocketAddress address;
        char target[300];       /* HOST:PORT as the server is asked ([IPv6]:PORT) */
        char what[SOCKADDR_STR_MAX + 16];
        int fd;
        sd_event_source *io;
} Listener;

struct Waiting {
        ClientForwards *owner;
        Waiting *prev, *next;
        uint32_t id;
        bool answered;          /* "ok forward ID" came */
        bool shut;              /* the local side shut down writing without a byte: gone, or only
                                 * reading (a banner); the first to go when the table is full */
        bool gone;              /* the local connection is closed; the request waits for its answer,
                                 * still counted (FORWARD_OUTSTANDING_MAX) and keeping the answers' order */
        int fd;
        char target[300];
        sd_event_source *timer, *io;
};

/* A listening socket systemd passed ("forward-PORT"), until a LocalForward= takes it. */
typedef struct Passed {
        uint16_t port;
        int fd;
} Passed;

struct ClientForwards {
        sd_event *event;
        Passed *passed;
        size_t n_passed;
        Listener *listeners;
        size_t n_listeners;
        Waiting *waiting;       /* newest first */
        unsigned n_waiting;     /* not gone */
        unsigned n_gone;
        uint32_t next_id;
        Mux *mux;               /* the session, while there is one */
        forward_send_t send;
        void *userdata;
        RateLimit log;
        bool unsupported;       /* the server answered "error unknown command" */
};

static Waiting *waiting_free(Waiting *w, const char *why) {
        if (!w)
                return NULL;
        if (why && !w->gone && ratelimit_below(&w->owner->log))
                log_warning("LocalForward to %s: %s", w->target, why);
        LIST_REMOVE(w->owner->waiting, w);
        if (w->gone)
                w->owner->n_gone--;
        else
                w->owner->n_waiting--;
        sd_event_source_disable_unref(w->timer);
        sd_event_source_disable_unref(w->io);
        safe_close(w->fd);
        free(w);
        return NULL;
}

/* The local connection goes; its request stays until the answer (or the deadline) comes. */
static void waiting_gone(Waiting *w, const char *why) {
        ClientForwards *f = w->owner;

        log_debug("LocalForward to %s: %s", w->target, why);
        w->io = sd_event_source_disable_unref(w->io);
        w->fd = safe_close(w->fd);
        w->gone = true;
        f->n_waiting--;
        f->n_gone++;
}

/* The local side shut down writing. With bytes unread, it has said its piece and waits for the
 * answer; without, it left -- or only reads. Either way nothing more comes: stop listening. */
static int waiting_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Waiting *w = userdata;
        int n = 0;

        if (revents & (EPOLLHUP | EPOLLERR)) {
                waiting_gone(w, "the local connection was reset before the exit server answered.");
                return 0;
        }
        (void) sd_event_source_set_enabled(s, SD_EVENT_OFF);
        if (ioctl(fd, FIONREAD, &n) >= 0 && n == 0)
                w->shut = true;
        return 0;
}

/* Room for one more: the oldest connection that shut down without a byte gives its place; the
 * requests not answered yet stay bounded whatever the local side does. */
static bool waiting_make_room(ClientForwards *f) {
        Waiting *o = NULL;

        if (f->n_waiting + f->n_gone >= FORWARD_OUTSTANDING_MAX)
                return false;
        if (f->n_waiting < FORWARD_WAITING_MAX)
                return true;
        for (Waiting *w = f->waiting; w; w = w->next)
                if (w->shut && !w->gone)
                        o = w;
        if (!o)
                return false;
        waiting_gone(o, "closed to make room: it had shut down without a byte while the table was full.");
        return true;
}

static Waiting *waiting_find(ClientForwards *f, uint32_t id) {
        for (Waiting *w = f->waiting; w; w = w->next)
                if (w->id == id)
                        return w;
        return NULL;
}

static int waiting_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        waiting_free(userdata, "no answer from the exit server in time; connection closed.");
        return 0;
}

static void listener_done(Listener *l) {
        l->io = sd_event_source_disable_unref(l->io);
        l->fd = safe_close(l->fd);
}

static void forward_accepted(Listener *l, int fd) {
        ClientForwards *f = l->owner;
        char msg[340];
        Waiting *w;

        if (!f->mux || f->unsupported || !waiting_make_room(f)) {
                if (ratelimit_below(&f->log))
                        log_warning("LocalForward %s: %s; connection closed.", l->what,
                                    !f->mux ? "the tunnel is not connected" :
                                    f->unsupported ? "the exit server does not support LocalForward= (an older version)" :
                                                     "too many connections waiting for the exit server");
                safe_close(fd);
                return;
        }
        w = new0(Waiting, 1);
        if (!w) {
                safe_close(fd);
                return;
        }
        w->owner = f;
        w->fd = fd;
        if (++f->next_id > INT32_MAX)
                f->next_id = 1;
        w->id = f->next_id;
        snprintf(w->target, sizeof(w->target), "%s", l->target);
        LIST_PREPEND(f->waiting, w);
        f->n_waiting++;
        if (sd_event_add_time_relative(f->event, &w->timer, CLOCK_MONOTONIC, FORWARD_WAIT_USEC, 0, waiting_timeout, w) <
                    0 ||
            sd_event_add_io(f->event, &w->io, w->fd, EPOLLRDHUP, waiting_io, w) < 0) {
                waiting_free(w, "out of memory");
                return;
        }
        snprintf(msg, sizeof(msg), "forward %" PRIu32 " %s", w->id, w->target);
        if (f->send(f->userdata, msg) < 0)
                waiting_free(w, "cannot ask the exit server; connection closed.");
}

static int listener_accept(int cfd, const SocketAddress *peer, void *userdata) {
        forward_accepted(userdata, cfd);
        return 0;
}

static int listener_handler(sd_event_source *src, int fd, uint32_t revents, void *userdata) {
        accept_batch(fd, 64, listener_accept, userdata);
        return 0;
}

/* The socket systemd bound for l's address, if it passed one. */
static int take_passed(ClientForwards *f, Listener *l) {
        for (size_t i = 0; i < f->n_passed; i++) {
                SocketAddress a = { .len = sizeof(a.storage) };
                char s[SOCKADDR_STR_MAX];

                if (f->passed[i].fd < 0 || f->passed[i].port != socket_address_port(&l->address))
                        continue;
                if (getsockname(f->passed[i].fd, &a.sa, &a.len) < 0 || !socket_address_equal(&a, &l->address)) {
                        log_warning("The socket passed by systemd for port %u listens on %s, not %s: ignored.",
                                    f->passed[i].port, socket_address_format(&a, s), l->what);
                        continue;
                }
                log_info("LocalForward %s: using the socket passed by systemd.", l->what);
                return TAKE_FD(f->passed[i].fd);
        }
        return -1;
}

static int listener_open(ClientForwards *f, Listener *l, char **ret_error) {
        int r;

        l->fd = take_passed(f, l);
        if (l->fd >= 0)
                r = 0;
        else
                r = socket_listen_tcp(&l->address, &l->fd);
        if (r < 0) {
                l->fd = -1;
                return asprintf(ret_error, "LocalForward=: cannot listen on %s: %s", l->what, strerror(-r)) < 0
                               ? -ENOMEM : r;
        }
        r = sd_event_add_io(f->event, &l->io, l->fd, EPOLLIN, listener_handler, l);
        if (r < 0) {
                listener_done(l);
                return r;
        }
        (void) sd_event_source_set_description(l->io, "client-local-forward");
        return 0;
}

int client_forwards_new(sd_event *e, forward_send_t send, void *userdata, ClientForwards **ret) {
        ClientForwards *f = new0(ClientForwards, 1);

        if (!f)
                return -ENOMEM;
        f->event = sd_event_ref(e);
        f->send = send;
        f->userdata = userdata;
        f->log = (RateLimit) { .interval_usec = 10 * USEC_PER_SEC, .burst = 10 };
        *ret = f;
        return 0;
}

ClientForwards *client_forwards_free(ClientForwards *f) {
        if (!f)
                return NULL;
        while (f->waiting)
                waiting_free(f->waiting, NULL);
        for (size_t i = 0; i < f->n_listeners; i++)
                listener_done(&f->listeners[i]);
        free(f->listeners);
        for (size_t i = 0; i < f->n_passed; i++)
                safe_close(f->passed[i].fd);
        free(f->passed);
        sd_event_unref(f->event);
        free(f);
        return NULL;
}

int client_forwards_apply(ClientForwards *f, const Definition *d, char **ret_error) {
        Listener *t;
        size_t n = d->n_local_forwards;
        int r = 0;

        assert(f);
        t = new0(Listener, n);
        if (!t)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                const LocalForward *lf = &d->local_forwards[i];
                Listener *l = &t[i];

                l->owner = f;
                l->fd = -1;
                l->address = lf->listen;
                socket_address_format(&lf->listen, l->what);
                snprintf(l->target, sizeof(l->target), strchr(lf->host, ':') ? "[%s]:%u" : "%s:%u", lf->host, lf->port);
                /* A listening address kept across a reload keeps its socket. */
                for (size_t j = 0; j < f->n_listeners; j++)
                        if (f->listeners[j].fd >= 0 && socket_address_equal(&f->listeners[j].address, &lf->listen)) {
                                l->fd = TAKE_FD(f->listeners[j].fd);
                                f->listeners[j].io = sd_event_source_disable_unref(f->listeners[j].io);
                                r = sd_event_add_io(f->event, &l->io, l->fd, EPOLLIN, listener_handler, l);
                                if (r >= 0)
                                        (void) sd_event_source_set_description(l->io, "client-local-forward");
                        }
                if (r >= 0 && l->fd < 0)
                        r = listener_open(f, l, ret_error);
                if (r < 0) {
                        /* Give the sockets taken back: the old table stays in force. */
                        for (size_t k = 0; k <= i; k++)
                                for (size_t j = 0; j < f->n_listeners; j++)
                                        if (f->listeners[j].fd < 0 && t[k].fd >= 0 &&
                                            socket_address_equal(&f->listeners[j].address, &t[k].address)) {
                                                f->listeners[j].fd = TAKE_FD(t[k].fd);
                                                (void) sd_event_add_io(f->event, &f->listeners[j].io, f->listeners[j].fd,
                                                                       EPOLLIN, listener_handler, &f->listeners[j]);
                                        }
                        for (size_t k = 0; k < n; k++)
                                listener_done(&t[k]);
                        free(t);
                        return r;
                }
                log_info("LocalForward: %s -> %s through the exit server.", l->what, l->target);
        }
        for (size_t j = 0; j < f->n_listeners; j++)
                listener_done(&f->listeners[j]);
        free(f->listeners);
        f->listeners = t;
        f->n_listeners = n;
        return 0;
}

int client_forwards_adopt(ClientForwards *f, uint16_t port, int fd) {
        Passed *t;

        assert(f);
        t = realloc(f->passed, sizeof(Passed) * (f->n_passed + 1));
        if (!t)
                return -ENOMEM;
        f->passed = t;
        f->passed[f->n_passed++] = (Passed) { .port = port, .fd = fd };
        return 0;
}

void client_forwards_session(ClientForwards *f, Mux *mux) {
        assert(f);
        f->mux = mux;
        f->unsupported = false;
        if (!mux)
                while (f->waiting)
                        waiting_free(f->waiting, "the tunnel connection ended; connection closed.");
}

bool client_forwards_stream(ClientForwards *f, MuxStream *s, const char *authority) {
        uint32_t id = mux_stream_forward(s);
        Waiting *w;
        int fd;

        if (id == 0)
                return false;
        w = waiting_find(f, id);
        if (w && w->gone && streq_ptr(authority, w->target)) {
                /* Asked for, but its local connection has gone meanwhile. */
                waiting_free(w, NULL);
                mux_stream_refuse(s, false);
                return true;
        }
        if (!w || !streq_ptr(authority, w->target)) {
                /* Never one we asked for: a stream must not reach a socket it was not meant for. */
                if (ratelimit_below(&f->log))
                        log_warning("The exit server opened a forward stream (%" PRIu32 ", %s) nobody waits for; refused.",
                                    id, authority ?: "?");
                mux_stream_refuse(s, false);
                return true;
        }
        w->io = sd_event_source_disable_unref(w->io);
        fd = TAKE_FD(w->fd);
        waiting_free(w, NULL);
        (void) mux_stream_accept(s, fd);
        return true;
}

/* The oldest forward not answered yet. */
static Waiting *oldest_unanswered(ClientForwards *f) {
        Waiting *o = NULL;

        for (Waiting *w = f->waiting; w; w = w->next)
                if (!w->answered)
                        o = w; /* newest first: the last one is the oldest */
        return o;
}

/* "ID REST": the id, and REST after it (NULL: not that form). */
static const char *parse_id(const char *p, uint32_t *ret) {
        uint64_t id = 0;

        if (*p < '1' || *p > '9')
                return NULL;
        for (; *p >= '0' && *p <= '9' && id <= INT32_MAX; p++)
                id = id * 10 + (uint64_t) (*p - '0');
        if ((*p != ' ' && *p != 0) || id > INT32_MAX)
                return NULL;
        *ret = (uint32_t) id;
        return *p ? p + 1 : p;
}

void client_forwards_answer(ClientForwards *f, const char *message) {
        const char *rest = NULL;
        char buf[600];
        uint32_t id;
        Waiting *w;

        /* Answers that name no forward go to the oldest one asked (they come in order). */
        if (streq(message, "error unknown command")) {
                if (!f->unsupported)
                        log_warning("The exit server does not support LocalForward= (an older version).");
                f->unsupported = true;
                waiting_free(oldest_unanswered(f), NULL);
                return;
        }
        if (startswith(message, "ok forward "))
                rest = parse_id(message + 11, &id);
        else if (startswith(message, "error forward "))
                rest = parse_id(message + 14, &id);
        if (!rest) {
                /* "error forward: ..." (our request was malformed: no id to name) is the oldest
                 * one's; anything else is no answer to a forward at all. */
                if (startswith(message, "error forward:")) {
                        snprintf(buf, sizeof(buf), "refused by the exit server: %s; connection closed.", message);
                        waiting_free(oldest_unanswered(f), buf);
                }
                return;
        }
        /* The rest by the id they carry: a server's extra or missing answer shifts nothing. */
        w = waiting_find(f, id);
        if (!w) {
                if (ratelimit_below(&f->log))
                        log_debug("Answer for forward %" PRIu32 ", which no connection waits for: ignored.", id);
                return;
        }
        if (message[0] == 'o') {
                w->answered = true;
                return;
        }
        snprintf(buf, sizeof(buf), "refused by the exit server: %s; connection closed.", *rest ? rest : message);
        waiting_free(w, buf);
}

void client_forwards_notice(ClientForwards *f, const char *message) {
        const char *rest;
        char buf[600];
        uint32_t id;
        Waiting *w;

        /* "ID REASON". */
        rest = parse_id(message, &id);
        if (!rest || !*rest || !(w = waiting_find(f, id)))
                return;
        snprintf(buf, sizeof(buf), "%s; connection closed.", rest);
        waiting_free(w, buf);
}
