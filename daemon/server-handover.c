// SPDX-License-Identifier: LGPL-2.1-or-later
/* Restarts that keep connections (docs/configuration.md, "Connections that survive"): on
 * SIGUSR2 (RestartKillSignal= of the unit, so on `systemctl restart`) the exit server ends its
 * resumable sessions as lost connections and hands each, with its public sockets, to the next
 * process through systemd's file descriptor store; the next process holds them as sessions
 * whose connection was lost, and each client resumes as after any lost connection (its proof
 * is made with the session's key, which the state carries). The state: HANDOVER_MAGIC, then
 * per session
 *
 *   session id=CLIENTID remote=ADDR rid=RESUMEID key=HEX64 ports=P,P...
 *   mux ... end   (mux_save())
 *
 * and "end". Nothing here is trusted more than a network peer's bytes: every field checked. */

#include <stdio.h>

#include "encoding.h"
#include "handover.h"
#include "log.h"
#include "macro.h"
#include "parse-util.h"
#include "server-internal.h"
#include "string-util.h"
#include "time-util.h"

static bool session_saved(Session *x) {
        unsigned ended;

        return x->resumable && x->mux && x->n_hosts == 0 && x->n_ports > 0 &&
               handover_token_ok(x->id, 255) && handover_token_ok(x->remote, SOCKADDR_STR_MAX) &&
               (mux_resumable_streams(x->mux, &ended) > 0 || ended > 0);
}

int server_handover(Server *s, FILE *f, int **fds, size_t *n_fds) {
        int n = 0, r;

        assert(s);
        fprintf(f, "%s\n", HANDOVER_MAGIC);
        for (Session *x = s->sessions; x; x = x->next) {
                _cleanup_(erase_and_freep) char *key = NULL;

                if (!x->resumable || !x->mux || x->n_hosts > 0)
                        continue;
                mux_sever(x->mux); /* a live one: lost, now */
                if (!session_saved(x))
                        continue;
                key = hexmem(x->resume_key, sizeof(x->resume_key));
                if (!key)
                        return -ENOMEM;
                fprintf(f, "session id=%s remote=%s rid=%s key=%s ports=", x->id, x->remote, x->resume_id, key);
                for (size_t i = 0; i < x->n_ports; i++)
                        fprintf(f, "%s%u", i ? "," : "", x->ports[i]);
                fputc('\n', f);
                r = mux_save(x->mux, f, fds, n_fds);
                if (r < 0)
                        return r;
                n++;
        }
        fprintf(f, "end\n");
        return ferror(f) ? -EIO : n;
}

void server_handover_done(Server *s) {
        /* The sessions handed over go now (their sockets closed without a reset); the others
         * drain as on SIGTERM. */
        for (Session *x = s->sessions, *next; x; x = next) {
                next = x->next;
                if (!x->resumable || !x->mux || x->n_hosts > 0 || !mux_is_dead(x->mux))
                        continue;
                mux_forget_sockets(x->mux);
                if (x->end == _SESSION_END_UNSET)
                        x->end = SESSION_END_STOPPING;
                session_free(x);
        }
}

/* A session line's fields, checked; its ports in *offer. */
static int parse_session(Server *s, const HandoverLine *l, Offer *offer, const char **ret_id,
                         const char **ret_remote, const char **ret_rid, const char **ret_key) {
        const Definition *d = server_def(s);
        const char *ports;

        if (handover_token(l, "id", 255, ret_id) < 0 ||
            handover_token(l, "remote", SOCKADDR_STR_MAX - 1, ret_remote) < 0 ||
            handover_token(l, "rid", RESUME_ID_HEX, ret_rid) < 0 || strlen(*ret_rid) != RESUME_ID_HEX ||
            handover_token(l, "key", 64, ret_key) < 0 || strlen(*ret_key) != 64 ||
            handover_token(l, "ports", MAX_OFFERED_PORTS * 6, &ports) < 0)
                return -EBADMSG;
        offer->ports = new0(uint16_t, MAX_OFFERED_PORTS);
        if (!offer->ports)
                return -ENOMEM;
        for (const char *p = ports; *p;) {
                char one[6];
                size_t n = strcspn(p, ",");
                uint16_t port;

                if (n == 0 || n >= sizeof(one) || offer->n_ports >= MAX_OFFERED_PORTS)
                        return -EBADMSG;
                memcpy(one, p, n);
                one[n] = 0;
                if (parse_port(one, &port) < 0)
                        return -EBADMSG;
                for (size_t i = 0; i < offer->n_ports; i++)
                        if (offer->ports[i] == port)
                                return -EBADMSG;
                /* A reload of the definition between the two processes may have taken it away. */
                if (!definition_port_allowed(d, port))
                        return -EPERM;
                offer->ports[offer->n_ports++] = port;
                p += n + (p[n] == ',');
        }
        if (offer->n_ports == 0)
                return -EBADMSG;
        if (session_find(s, *ret_id))
                return -EEXIST;
        if (s->n_sessions >= d->max_clients)
                return -EUSERS;
        return 0;
}

/* One "session" line and its mux: a held session, its ports referenced. Returns 1 when it was
 * taken, 0 when it was dropped (its connections reset) and the reader is still in step, < 0
 * when the state cannot be read on. */
static int restore_session(Server *s, HandoverReader *rd, const HandoverLine *l, int *fds, size_t n_fds,
                           unsigned *ret_streams) {
        const Definition *d = server_def(s);
        const char *id = NULL, *remote, *rid, *key;
        _cleanup_(offer_done) Offer offer = {};
        size_t bound = 0;
        Session *x = NULL;
        MuxConfig cfg;
        unsigned ended;
        Mux *mux = NULL;
        int r, bad;

        bad = parse_session(s, l, &offer, &id, &remote, &rid, &key);
        if (bad == -ENOMEM)
                return bad;
        cfg = (MuxConfig) {
                .h2_client = true,
                .max_frame_size = d->max_frame_size,
                .max_streams = d->max_streams,
                .keepalive_usec = d->keepalive_usec,
                .resumable = true,
        };
        /* Read even when the session cannot be taken: the next one follows its streams. */
        r = mux_load(s->manager->event, &cfg, rd, fds, n_fds, &mux);
        if (r < 0)
                return r;
        if (bad < 0) {
                log_warning_errno(bad, "Connections of client %s from the previous process not taken: %s",
                                  id && handover_token_ok(id, 255) ? id : "?",
                                  bad == -EPERM ? "a port AllowPorts= no longer allows"
                                  : bad == -EEXIST ? "the client twice"
                                  : bad == -EUSERS ? "MaxClients= reached" : "a malformed session");
                mux_free(mux); /* resets them */
                return 0;
        }
        for (; bound < offer.n_ports; bound++) {
                _cleanup_free_ char *why = NULL;
                r = listener_ref(s, offer.ports[bound], &why);
                if (r < 0) {
                        log_warning("Connections of client %s from the previous process not taken: port %u: %s.", id,
                                    offer.ports[bound], why ?: strerror(-r));
                        goto drop;
                }
        }
        r = session_new(s, id, remote, &offer, &x);
        if (r < 0)
                goto drop;
        bound = 0; /* the session holds the references now */
        x->mux = TAKE_PTR(mux);
        x->resumable = true;
        memcpy(x->resume_id, rid, RESUME_ID_HEX + 1);
        if (unhexmem(key, x->resume_key, sizeof(x->resume_key)) < 0 || session_hold_start(x, SESSION_END_ERROR) < 0)
                goto drop;
        *ret_streams += mux_resumable_streams(x->mux, &ended);
        log_conn(LOG_INFO, x->id, x->remote, 0,
                 "Holding %u connections of client %s for %" PRIu64 " s, from the previous process.",
                 mux_resumable_streams(x->mux, &ended), x->id, d->resume_usec / USEC_PER_SEC);
        return 1;
drop:
        while (bound > 0)
                listener_unref(s, offer.ports[--bound]);
        mux_free(mux);
        session_free(x);
        return 0;
}

int server_restore(Server *s, HandoverReader *rd, int *fds, size_t n_fds) {
        HandoverLine l;
        unsigned sessions = 0, streams = 0;
        int r;

        assert(s);
        assert(rd);
        for (;;) {
                r = handover_next(rd, &l);
                if (r < 0 || streq(l.kind, "end"))
                        break;
                r = streq(l.kind, "session") ? restore_session(s, rd, &l, fds, n_fds, &streams) : -EBADMSG;
                if (r < 0) { /* the rest cannot be found in what follows */
                        log_warning_errno(r, "The previous process's state is damaged after %u sessions: %m", sessions);
                        break;
                }
                sessions += r;
        }
        if (sessions > 0)
                log_info("Took over %u connections of %u clients from the previous process.", streams, sessions);
        return 0;
}
