// SPDX-License-Identifier: LGPL-2.1-or-later
/* The exit server; see server.h. The Server object: its sockets (its own or systemd's), its TLS
 * credentials, the HTTP-mode fronts, start, drain and stop, and what the bus shows. The other
 * concerns have a file each: server-listener.c (public ports), server-handshake.c (the control
 * port's handshakes), server-session.c (sessions and their control messages), server-reload.c.
 * A client's session starts as a Pending handshake (TLS, then the WebSocket upgrade with its
 * token and offer) and becomes a Session with a Mux. Public ports are Listeners shared by every
 * session that offers them, round-robin, and closed the moment the last of those sessions ends,
 * so a reconnecting client can take them again at once. */

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>

#include "acmecert.h"
#include "autotls.h"
#include "log.h"
#include "macro.h"
#include "parse-util.h"
#include "ratelimit.h"
#include "server-internal.h"
#include "socket-util.h"
#include "string-util.h"
#include "time-util.h"
#include "ws.h"

/* Without AutoTLSSAN=: the host name, loopback, and the global addresses of the machine's
 * interfaces, so that a client pinning the CA and dialling the address it reaches us by passes
 * the name check (a pinned CA does not waive it). An exit server behind NAT has to name its
 * public address with AutoTLSSAN=. */
static int default_sans(char ***sans, size_t *n) {
        static const char *const fixed[] = { "localhost", "127.0.0.1", "::1" };
        _cleanup_free_ char *list = NULL;
        struct ifaddrs *ifa = NULL;
        char host[256] = "";
        size_t len = 0;
        FILE *f;

        (void) gethostname(host, sizeof(host) - 1);
        if (*host && strv_push(sans, n, strdup(host)) < 0)
                return -ENOMEM;
        for (size_t i = 0; i < ELEMENTSOF(fixed); i++)
                if (strv_push(sans, n, strdup(fixed[i])) < 0)
                        return -ENOMEM;
        if (getifaddrs(&ifa) >= 0) {
                for (struct ifaddrs *i = ifa; i; i = i->ifa_next) {
                        char buf[INET6_ADDRSTRLEN];
                        const void *a;

                        if (!i->ifa_addr || (i->ifa_flags & IFF_LOOPBACK))
                                continue;
                        if (i->ifa_addr->sa_family == AF_INET)
                                a = &((struct sockaddr_in *) i->ifa_addr)->sin_addr;
                        else if (i->ifa_addr->sa_family == AF_INET6) {
                                const struct in6_addr *a6 = &((struct sockaddr_in6 *) i->ifa_addr)->sin6_addr;
                                if (IN6_IS_ADDR_LINKLOCAL(a6) || IN6_IS_ADDR_LOOPBACK(a6))
                                        continue;
                                a = a6;
                        } else
                                continue;
                        if (!inet_ntop(i->ifa_addr->sa_family, a, buf, sizeof(buf)) || strv_contains(*sans, *n, buf))
                                continue;
                        if (strv_push(sans, n, strdup(buf)) < 0) {
                                freeifaddrs(ifa);
                                return -ENOMEM;
                        }
                }
                freeifaddrs(ifa);
        }
        f = open_memstream(&list, &len);
        if (!f)
                return -ENOMEM;
        for (size_t i = 0; i < *n; i++)
                fprintf(f, "%s%s", i ? ", " : "", (*sans)[i]);
        if (fclose(f) != 0)
                return -ENOMEM;
        log_notice("AutoTLSSAN= not set: the certificate names %s. Clients pinning the CA must dial one of "
                   "these; set AutoTLSSAN= to the public name or address clients use.", list);
        return 0;
}

int server_load_credentials(const Definition *d, gnutls_certificate_credentials_t *ret, char **ret_error) {
        _cleanup_free_ char *err = NULL, *fp = NULL;
        _cleanup_strv_free_ char **sans = NULL;
        size_t n = 0;
        int r;

        assert(d);
        assert(ret);
        assert(ret_error);
        *ret = NULL;
        if (!d->tls) {
                log_warning("TLS=no: the control port speaks plain WebSocket; terminate TLS in front of it.");
                return 0;
        }
        if (!d->auto_tls) {
                r = tls_server_credentials_from_files(d->certificate_file, d->key_file, ret, ret_error);
                if (r < 0)
                        return r;
                log_info("Using certificate %s.", d->certificate_file);
                return 0;
        }
        if (d->n_auto_tls_san == 0) {
                r = default_sans(&sans, &n);
                if (r < 0)
                        return r;
        }
        r = autotls_setup(d->state_directory, n > 0 ? sans : d->auto_tls_san, n > 0 ? n : d->n_auto_tls_san, ret,
                          &fp, ret_error);
        if (r < 0)
                return r;
        log_info("Auto-TLS CA %s/ca.crt, fingerprint %s", d->state_directory, fp);
        return 0;
}

int server_new(Manager *m, Server **ret) {
        Server *s;

        assert(m);
        assert(ret);
        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->manager = m;
        s->control_fd = s->new_control_fd = s->http_fd = s->https_fd = -1;
        s->auth_log = (RateLimit) { .interval_usec = 10 * USEC_PER_SEC, .burst = 10 };
        s->busy_log = (RateLimit) { .interval_usec = 10 * USEC_PER_SEC, .burst = 5 };
        s->udp_log = (RateLimit) { .interval_usec = 10 * USEC_PER_SEC, .burst = 10 };
        s->refused_log = s->control_refused_log = (RateLimit) { .interval_usec = 10 * USEC_PER_SEC, .burst = 10 };
        proxy_gate_init(&s->control_gate, m, "Control port", true, &s->refused.proxy_header, server_control_accept,
                        s);
        *ret = s;
        return 0;
}

/* A socket systemd bound for us (inletsd@NAME.socket and the others inletsd-generator writes):
 * "control", "http", "https", "data-PORT" and "udp-PORT". Privileged ports need no capability then, and a
 * restart refuses nothing. */
static bool take_systemd_socket(const char *name, int fd, void *userdata) {
        Server *s = userdata;
        uint16_t port;

        if (streq(name, "control") && s->control_fd < 0) {
                s->control_fd = fd;
                log_info("Using the control socket passed by systemd.");
        } else if (streq(name, "http") && s->http_fd < 0) {
                s->http_fd = fd;
                log_info("Using the HTTP socket passed by systemd.");
        } else if (streq(name, "https") && s->https_fd < 0) {
                s->https_fd = fd;
                log_info("Using the HTTPS socket passed by systemd.");
        } else if (strncmp(name, "data-", 5) == 0 && parse_port(name + 5, &port) >= 0 && !listener_find(s, port))
                (void) listener_add_from_systemd(s, port, fd);
        else if (strncmp(name, "udp-", 4) == 0 && parse_port(name + 4, &port) >= 0 && !udp_port_find(s, port))
                (void) udp_port_add_from_systemd(s, port, fd);
        else
                return false;
        return true;
}

static bool address_set(const SocketAddress *a) {
        return a->len > 0;
}

/* Credentials that a handshake in progress may still use are kept until exit. */
void server_retire_credentials(Server *s, gnutls_certificate_credentials_t c) {
        gnutls_certificate_credentials_t *t;

        assert(s);
        if (!c)
                return;
        t = realloc(s->retired_creds, sizeof(*t) * (s->n_retired_creds + 1));
        if (t) {
                s->retired_creds = t;
                s->retired_creds[s->n_retired_creds++] = c;
        } /* else: leak rather than free what a handshake may still use */
}

static void on_acme_credentials(gnutls_certificate_credentials_t creds, void *userdata) {
        Server *s = userdata;

        assert(s);

        server_retire_credentials(s, s->https_creds);
        s->https_creds = creds;
        if (s->https)
                http_front_set_credentials(s->https, creds);
}

static uint16_t fd_port(int fd) {
        SocketAddress a = { .len = sizeof(a.storage) };
        return getsockname(fd, &a.sa, &a.len) < 0 ? 443 : socket_address_port(&a);
}

/* ACMEDomain=: the account key, the stored certificate or, until one is issued, a
 * placeholder (the control port's certificate, else an auto-TLS one for the names). */
static int start_acme(Server *s) {
        const Definition *d = server_def(s);
        _cleanup_free_ char *err = NULL, *dir = NULL, *fp = NULL;
        int r;

        r = acme_cert_new(s->manager, on_acme_credentials, s, &s->acme, &err);
        if (r < 0)
                return log_error_errno(r, "%s", err ?: "Failed to set up ACME");
        if (s->https_creds || s->creds)
                return 0;
        dir = asprintf_safe("%s/acme/placeholder", d->state_directory);
        if (!dir)
                return log_oom();
        (void) mkdir(dir, 0700);
        r = autotls_setup(dir, d->acme_domains, d->n_acme_domains, &s->placeholder_creds, &fp, &err);
        if (r < 0)
                return log_error_errno(r, "%s", err ?: "Failed to make a placeholder HTTPS certificate");
        return 0;
}

/* HTTP mode: the public HTTP port, and HTTPS when HTTPSListen= is set (or systemd passed it). */
static int start_http(Server *s) {
        const Definition *d = server_def(s);
        char buf[SOCKADDR_STR_MAX];
        int r;

        if (s->http_fd < 0) {
                r = socket_listen_tcp(&d->http_listen, &s->http_fd);
                if (r < 0)
                        return log_error_errno(r, "Failed to listen on HTTP address %s: %m",
                                               socket_address_format(&d->http_listen, buf));
        }
        r = http_front_new(s->manager, TAKE_FD(s->http_fd), NULL, server_route_host, s, &s->http);
        if (r < 0)
                return log_error_errno(r, "Failed to set up the HTTP port: %m");

        if (!address_set(&d->https_listen) && s->https_fd < 0)
                return 0;
        if (d->n_acme_domains > 0) {
                r = start_acme(s);
                if (r < 0)
                        return r;
                http_front_set_acme(s->http, acme_cert_thumbprint(s->acme),
                                    s->https_fd >= 0 ? fd_port(s->https_fd)
                                                     : socket_address_port(&d->https_listen));
        } else if (d->https_certificate_file) {
                _cleanup_free_ char *err = NULL;
                r = tls_server_credentials_from_files(d->https_certificate_file, d->https_key_file, &s->https_creds,
                                                      &err);
                if (r < 0)
                        return log_error_errno(r, "%s", err ?: "Failed to load the HTTPS certificate");
        } else if (!s->creds)
                return log_error_errno(EINVAL, "%s: HTTPS needs HTTPSCertificateFile= (TLS=no leaves no certificate to "
                                       "share)", d->path);
        if (s->https_fd < 0) {
                r = socket_listen_tcp(&d->https_listen, &s->https_fd);
                if (r < 0)
                        return log_error_errno(r, "Failed to listen on HTTPS address %s: %m",
                                               socket_address_format(&d->https_listen, buf));
        }
        r = http_front_new(s->manager, TAKE_FD(s->https_fd), s->https_creds ?: s->creds ?: s->placeholder_creds,
                           server_route_host, s, &s->https);
        if (r < 0)
                return log_error_errno(r, "Failed to set up the HTTPS port: %m");
        return 0;
}

int server_start(Server *s) {
        const Definition *d = server_def(s);
        char buf[SOCKADDR_STR_MAX];
        int r;

        _cleanup_free_ char *err = NULL;
        r = server_load_credentials(d, &s->creds, &err);
        if (r < 0)
                return log_error_errno(r, "%s", err ?: "Failed to set up TLS");
        r = manager_take_systemd_sockets(s->manager, take_systemd_socket, s);
        if (r < 0)
                return r;
        if (s->control_fd < 0) {
                r = socket_listen_tcp(&d->control_listen, &s->control_fd);
                if (r < 0)
                        return log_error_errno(r, "Failed to listen on control address %s: %m",
                                               socket_address_format(&d->control_listen, buf));
        }
        r = server_control_watch(s);
        if (r < 0)
                return r;
        if (d->mode == MODE_HTTP) {
                r = start_http(s);
                if (r < 0)
                        return r;
                log_info("Control port %s (%s), HTTP on %s%s%s.",
                         socket_address_format(&d->control_listen, (char[SOCKADDR_STR_MAX]) {}),
                         d->tls ? "wss" : "ws, no TLS", socket_address_format(&d->http_listen, buf),
                         s->https ? ", HTTPS on " : "",
                         s->https ? socket_address_format(&d->https_listen, (char[SOCKADDR_STR_MAX]) {}) : "");
        } else {
                socket_address_format(&d->data_listen, buf);
                log_info("Control port %s (%s), tunneled ports bind to %.*s.",
                         socket_address_format(&d->control_listen, (char[SOCKADDR_STR_MAX]) {}),
                         d->tls ? "wss" : "ws, no TLS", (int) (strrchr(buf, ':') - buf), buf);
        }
        manager_set_state(s->manager, TUNNEL_LISTENING);
        return 0;
}

void server_drain(Server *s) {
        assert(s);
        if (s->http)
                http_front_stop(s->http);
        if (s->https)
                http_front_stop(s->https);
        s->control_io = sd_event_source_disable_unref(s->control_io);
        s->control_fd = safe_close(s->control_fd);
        while (s->pending)
                pending_free(s->pending);
        proxy_gate_done(&s->control_gate);
        for (Listener *l = s->listeners; l; l = l->next)
                listener_drain(l);
        udp_ports_drain(s);
        /* Held connections cannot resume in a process that is going away. */
        for (Session *x = s->sessions, *next; x; x = next) {
                next = x->next;
                if (x->held)
                        session_free(x);
        }
}

void server_stop(Server *s) {
        assert(s);
        s->control_io = sd_event_source_disable_unref(s->control_io);
        s->control_fd = safe_close(s->control_fd);
        while (s->pending)
                pending_free(s->pending);
        for (Session *x = s->sessions, *next; x; x = next) {
                next = x->next;
                session_end_now(x, SESSION_END_STOPPING, NULL);
        }
}

Server *server_free(Server *s) {
        if (!s)
                return NULL;
        while (s->pending)
                pending_free(s->pending);
        proxy_gate_done(&s->control_gate);
        http_front_free(s->http);
        http_front_free(s->https);
        acme_cert_free(s->acme);
        while (s->sessions)
                session_free(s->sessions);
        udp_ports_free(s);
        while (s->listeners) {
                Listener *l = s->listeners;
                s->listeners = l->next;
                listener_free(l);
        }
        sd_event_source_disable_unref(s->control_io);
        safe_close(s->control_fd);
        safe_close(s->new_control_fd);
        if (s->creds)
                gnutls_certificate_free_credentials(s->creds);
        if (s->new_creds)
                gnutls_certificate_free_credentials(s->new_creds);
        if (s->https_creds)
                gnutls_certificate_free_credentials(s->https_creds);
        if (s->placeholder_creds)
                gnutls_certificate_free_credentials(s->placeholder_creds);
        safe_close(s->http_fd);
        safe_close(s->https_fd);
        for (size_t i = 0; i < s->n_retired_creds; i++)
                gnutls_certificate_free_credentials(s->retired_creds[i]);
        free(s->retired_creds);
        free(s);
        return NULL;
}

/* ---- what the bus shows ---- */

AcmeCert *server_acme(Server *s) {
        assert(s);
        return s->acme;
}

void server_get_certificates(Server *s, uint64_t *ret_control, uint64_t *ret_https) {
        assert(s);
        assert(ret_control);
        assert(ret_https);

        *ret_control = server_def(s)->tls && s->creds ? tls_credentials_not_after(s->creds) : 0;
        *ret_https = s->https ? tls_credentials_not_after(s->https_creds ?: s->creds ?: s->placeholder_creds) : 0;
}

void server_get_counters(Server *s, TunnelCounters *ret) {
        assert(s);
        assert(ret);
        *ret = s->closed;
        for (Session *x = s->sessions; x; x = x->next) {
                MuxStats st;
                mux_get_stats(x->mux, &st);
                ret->bytes_in += st.bytes_in;
                ret->bytes_out += st.bytes_out;
                ret->total_streams += st.total_streams;
                ret->buffered += st.held;
                ret->active_streams += st.active_streams;
        }
}

void server_get_resume(Server *s, ResumeCounters *ret) {
        assert(s);
        assert(ret);
        *ret = s->resume;
        for (Session *x = s->sessions; x; x = x->next) {
                MuxStats st;
                mux_get_stats(x->mux, &st);
                ret->resent_bytes += st.resent_bytes;
                if (x->held) {
                        ret->held_sessions++;
                        ret->held_streams += st.active_streams;
                }
        }
}

void server_note_refused(Server *s, uint16_t port, const SocketAddress *peer) {
        char buf[SOCKADDR_STR_MAX];

        assert(s);
        assert(peer);
        if (port == 0)
                s->refused.control_allow_list++;
        else
                s->refused.allow_list++;
        /* Policy doing its work, not a fault; bounded, as anyone can provoke it, and apart for
         * the control port, so that a flood there does not hide refusals on public ports. */
        if (!ratelimit_below(port == 0 ? &s->control_refused_log : &s->refused_log))
                return;
        socket_address_format(peer, buf);
        if (port == 0)
                log_conn(LOG_INFO, NULL, buf, 0, "Control port: refused %s (ControlAllowFrom=).", buf);
        else
                log_conn(LOG_INFO, NULL, buf, port, "Port %u: refused %s (AllowFrom=/DenyFrom=).", port,
                         buf);
}

void server_get_handshake_failures(Server *s, uint64_t ret[static 6]) {
        assert(s);
        assert(_HANDSHAKE_FAILURE_MAX == 6);
        memcpy(ret, s->handshake_failures, sizeof(s->handshake_failures));
}

void server_get_sessions(Server *s, uint64_t *ret_connects, uint64_t ret_disconnects[static SERVER_END_REASONS],
                         const char *const **ret_names) {
        assert(s);
        assert(_SESSION_END_MAX == SERVER_END_REASONS);
        *ret_connects = s->connects;
        memcpy(ret_disconnects, s->disconnects, sizeof(s->disconnects));
        *ret_names = session_end_names;
}

void server_get_refused(Server *s, RefusedCounters *ret) {
        assert(s);
        assert(ret);
        *ret = s->refused;
        http_front_add_refused(s->http, ret);
        http_front_add_refused(s->https, ret);
}

void server_foreach_client(Server *s, void (*f)(const PeerInfo *p, void *userdata), void *userdata) {
        assert(s);
        assert(f);
        for (Session *x = s->sessions; x; x = x->next) {
                MuxStats st;
                mux_get_stats(x->mux, &st);
                PeerInfo p = {
                        .id = x->id,
                        .address = x->remote,
                        .since_usec = x->since,
                        .bytes_in = st.bytes_in,
                        .bytes_out = st.bytes_out,
                        .streams = st.active_streams,
                        .ports = x->ports,
                        .n_ports = x->n_ports,
                        .udp_ports = x->udp_ports,
                        .n_udp_ports = x->n_udp_ports,
                };
                f(&p, userdata);
        }
}

void server_foreach_stream(Server *s, void (*f)(const StreamInfo *i, void *userdata), void *userdata) {
        assert(s);
        assert(f);
        for (Session *x = s->sessions; x; x = x->next)
                manager_foreach_mux_stream(x->mux, x->id, f, userdata);
}

int server_disconnect_client(Server *s, const char *id) {
        Session *x = session_find(s, id);

        if (!x)
                return -ENOENT;
        log_info("Disconnecting client %s (%s) on request.", x->id, x->remote);
        session_end_now(x, SESSION_END_DISCONNECTED, "disconnected by an administrator");
        return 0;
}

void server_status_summary(Server *s, size_t *ret_clients, char *ports, size_t size) {
        size_t o = 0;

        assert(s);
        assert(ret_clients);
        assert(ports);
        assert(size > 0);
        *ret_clients = s->n_sessions;
        ports[0] = 0;
        if (server_def(s)->mode == MODE_HTTP) {
                for (Session *x = s->sessions; x; x = x->next)
                        for (size_t i = 0; i < x->n_hosts && o + 2 < size; i++)
                                o += (size_t) snprintf(ports + o, size - o, "%s%s", o ? " " : "", x->hosts[i]);
                return;
        }
        for (Listener *l = s->listeners; l && o + 8 < size; l = l->next)
                if (l->refs > 0)
                        o += (size_t) snprintf(ports + o, size - o, "%s%u", o ? " " : "", l->port);
}
