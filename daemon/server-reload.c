// SPDX-License-Identifier: LGPL-2.1-or-later
/* The exit server's side of a reload, in two steps: server_reload() binds and loads what the
 * new definition needs (nothing changes on failure), server_reloaded() switches to it. */

#include <stdio.h>

#include "acmecert.h"
#include "log.h"
#include "macro.h"
#include "server-internal.h"
#include "socket-util.h"

static bool strv_equal(char **a, size_t na, char **b, size_t nb) {
        if (na != nb)
                return false;
        for (size_t i = 0; i < na; i++)
                if (!streq(a[i], b[i]))
                        return false;
        return true;
}

static bool tls_changed(const Definition *a, const Definition *b) {
        return a->tls != b->tls || a->auto_tls != b->auto_tls ||
               !strv_equal(a->auto_tls_san, a->n_auto_tls_san, b->auto_tls_san, b->n_auto_tls_san) ||
               !streq_ptr(a->certificate_file, b->certificate_file) || !streq_ptr(a->key_file, b->key_file) ||
               !streq_ptr(a->state_directory, b->state_directory);
}

int server_reload(Server *s, const Definition *n, char **ret_error) {
        const Definition *o = server_def(s);
        char buf[SOCKADDR_STR_MAX];
        int r;

        assert(n);
        assert(ret_error);
        assert(s->new_control_fd < 0);
        assert(!s->new_creds_set);
        if (!socket_address_equal(&o->control_listen, &n->control_listen)) {
                r = socket_listen_tcp(&n->control_listen, &s->new_control_fd);
                if (r < 0) {
                        if (asprintf(ret_error, "%s: cannot listen on ControlListen=%s: %s", n->path,
                                     socket_address_format(&n->control_listen, buf), strerror(-r)) < 0)
                                *ret_error = NULL;
                        return r;
                }
        }
        if (tls_changed(o, n)) {
                r = server_load_credentials(n, &s->new_creds, ret_error);
                if (r < 0) {
                        s->new_control_fd = safe_close(s->new_control_fd);
                        return r;
                }
                s->new_creds_set = true;
        }
        return 0;
}

/* Clients holding ports (TCP or UDP) that are no longer allowed lose their session; the rest (and their
 * streams) carry on. A new token applies to new clients. */
static void drop_disallowed_sessions(Server *s) {
        const Definition *d = server_def(s);
        Session *x, *next;

        for (x = s->sessions; x; x = next) {
                next = x->next;
                bool gone = false;
                for (size_t i = 0; !gone && i < x->n_ports; i++)
                        if (!definition_port_allowed(d, x->ports[i])) {
                                log_info("Client %s: port %u is no longer allowed (AllowPorts=), disconnecting.",
                                         x->id, x->ports[i]);
                                session_end_now(x, SESSION_END_RELOAD, "port no longer allowed");
                                gone = true;
                        }
                /* The same for UDP: its next session offers again, and hears what is refused. */
                for (size_t i = 0; !gone && i < x->n_udp_ports; i++)
                        if (!definition_udp_port_allowed(d, x->udp_ports[i])) {
                                log_info("Client %s: UDP port %u is no longer allowed (AllowUDPPorts=), disconnecting.",
                                         x->id, x->udp_ports[i]);
                                session_end_now(x, SESSION_END_RELOAD, "UDP port no longer allowed");
                                gone = true;
                        }
        }
}

void server_reloaded(Server *s, const Definition *old) {
        const Definition *d = server_def(s);

        assert(old);
        if (s->new_control_fd >= 0) {
                char buf[SOCKADDR_STR_MAX];
                s->control_io = sd_event_source_disable_unref(s->control_io);
                safe_close(s->control_fd);
                s->control_fd = TAKE_FD(s->new_control_fd);
                if (server_control_watch(s) < 0)
                        log_oom();
                log_info("Control port moved to %s.", socket_address_format(&d->control_listen, buf));
        }
        if (s->new_creds_set) {
                server_retire_credentials(s, s->creds);
                s->creds = s->new_creds;
                s->new_creds = NULL;
                s->new_creds_set = false;
                log_info("TLS settings changed: new handshakes use the new certificate.");
                if (s->https && !s->https_creds)
                        http_front_set_credentials(s->https, s->creds);
        }
        if (d->mode == MODE_HTTP &&
            (memcmp(&d->http_listen, &old->http_listen, sizeof(d->http_listen)) != 0 ||
             memcmp(&d->https_listen, &old->https_listen, sizeof(d->https_listen)) != 0 ||
             !streq_ptr(d->https_certificate_file, old->https_certificate_file) ||
             !!d->n_acme_domains != !!old->n_acme_domains))
                log_warning("HTTPListen=, HTTPSListen=, the HTTPS certificate and turning ACME on or off apply at the "
                            "next restart.");
        if (s->acme && d->n_acme_domains > 0)
                acme_cert_reloaded(s->acme);
        drop_disallowed_sessions(s);
        udp_flows_recheck(s); /* UDP flows can last for ever: the new lists judge the open ones */
}
