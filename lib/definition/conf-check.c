// SPDX-License-Identifier: LGPL-2.1-or-later
/* After parsing: the defaults a definition gets and the checks of its combination of keys, one
 * function per role, then the token (conf-token.c). */

#include <assert.h>
#include <stdio.h>
#include <strings.h>

#include "conf-token.h"
#include "conf.h"
#include "log.h"
#include "parse-util.h"
#include "socket-util.h"
#include "string-util.h"
#include "time-util.h"

static bool address_unset(const SocketAddress *a) {
        return a->len == 0;
}

/* [Tunnel] defaults every role shares. */
static void tunnel_defaults(Definition *d) {
        if (d->mode < 0)
                d->mode = MODE_TCP;
        if (d->keepalive_usec == 0)
                d->keepalive_usec = 20 * USEC_PER_SEC;
        if (d->handshake_timeout_usec == 0)
                d->handshake_timeout_usec = 10 * USEC_PER_SEC;
        if (d->max_frame_size == 0)
                d->max_frame_size = 2 * 1024 * 1024;
        if (d->max_header_bytes == 0)
                d->max_header_bytes = 16 * 1024;
        if (d->max_headers == 0)
                d->max_headers = 100;
        if (d->idle_timeout_usec == 0)
                d->idle_timeout_usec = 60 * USEC_PER_SEC;
        if (d->resume_usec == UINT64_MAX)
                d->resume_usec = 30 * USEC_PER_SEC;
        if (d->response_timeout_usec == 0)
                d->response_timeout_usec = 60 * USEC_PER_SEC;
        if (d->udp_idle_usec == 0)
                d->udp_idle_usec = 60 * USEC_PER_SEC;
}

/* ACMEDomain= and the ports it implies; runs before the HTTP port's own default. */
static int server_check_acme(Definition *d, const char *f, char **ret_error) {
        if (d->n_acme_domains > 0) {
                if (d->mode != MODE_HTTP)
                        return errorf(ret_error, -EINVAL, "%s: ACMEDomain= needs Mode=http", f);
                if (d->https_certificate_file)
                        return errorf(ret_error, -EINVAL,
                                      "%s: ACMEDomain= and HTTPSCertificateFile= exclude each other", f);
                /* the CA validates on port 80; the certificate is for 443 */
                if (address_unset(&d->http_listen))
                        (void) socket_address_parse("0.0.0.0", 80, &d->http_listen);
                if (address_unset(&d->https_listen))
                        (void) socket_address_parse("0.0.0.0", 443, &d->https_listen);
                if (!d->acme_directory && !(d->acme_directory = strdup(ACME_DIRECTORY_PRODUCTION)))
                        return -ENOMEM;
        } else if (d->acme_email || d->acme_directory || d->acme_ca_file)
                log_warning("%s: ACMEEmail=, ACMEDirectory= and ACMECAFile= need ACMEDomain=, ignoring.", f);
        return 0;
}

/* TLS on the control port: own certificate, auto-TLS, or none behind a proxy. */
static int server_check_tls(Definition *d, const char *f, char **ret_error) {
        if (d->tls < 0)
                d->tls = true;
        if (!!d->certificate_file != !!d->key_file)
                return errorf(ret_error, -EINVAL, "%s: CertificateFile= and KeyFile= must be set together", f);
        if (d->auto_tls > 0 && d->certificate_file)
                return errorf(ret_error, -EINVAL, "%s: AutoTLS=yes and CertificateFile= exclude each other", f);
        if (d->auto_tls < 0)
                d->auto_tls = d->tls && !d->certificate_file;
        if (d->tls && !d->auto_tls && !d->certificate_file)
                return errorf(ret_error, -EINVAL,
                                 "%s: TLS needs AutoTLS=yes or CertificateFile=; set TLS=no only behind a "
                                 "TLS-terminating proxy", f);
        if (!d->state_directory) {
                const char *e = getenv("STATE_DIRECTORY");
                if (e && *e)
                        d->state_directory = strndup(e, strcspn(e, ":"));
                else if (asprintf(&d->state_directory, "/var/lib/inlets/%s", d->name ?: "default") < 0)
                        d->state_directory = NULL;
                if (!d->state_directory)
                        return -ENOMEM;
        }
        return 0;
}

/* A SCOPE=PREFIX item must scope what the mode serves: ports in TCP mode, hosts in HTTP mode.
 * (Exit server and tunnel client alike.) */
static int check_access_scopes(Definition *d, const char *f, char **ret_error) {
        for (size_t i = 0; i < d->access.n_rules; i++) {
                const AccessRule *a = &d->access.rules[i];
                char p[ADDRESS_PREFIX_STR_MAX];
                bool port;

                if (!a->scope)
                        continue;
                port = a->scope[strspn(a->scope, "0123456789")] == 0;
                if (port == (d->mode == MODE_TCP))
                        continue;
                return errorf(ret_error, -EINVAL, "%s: %s=%s=%s: %s", f, a->allow ? "AllowFrom" : "DenyFrom",
                              a->scope, address_prefix_format(&a->prefix, p),
                              port ? "a port scope is for Mode=tcp; in HTTP mode scope by host name"
                                   : "a host scope is for Mode=http; in TCP mode scope by port");
        }
        return 0;
}

static int server_check(Definition *d, const char *f, char **ret_error) {
        int r;

        if (address_unset(&d->control_listen))
                (void) socket_address_parse("0.0.0.0", DEFAULT_CONTROL_PORT, &d->control_listen);
        if (address_unset(&d->data_listen))
                (void) socket_address_parse("0.0.0.0", 1, &d->data_listen);
        r = server_check_acme(d, f, ret_error);
        if (r < 0)
                return r;
        if (address_unset(&d->http_listen))
                (void) socket_address_parse("0.0.0.0", DEFAULT_HTTP_PORT, &d->http_listen);
        r = server_check_tls(d, f, ret_error);
        if (r < 0)
                return r;
        r = check_access_scopes(d, f, ret_error);
        if (r < 0)
                return r;
        if (d->max_clients == 0)
                d->max_clients = 64;
        if (d->max_streams == 0)
                d->max_streams = 1024;
        if (d->max_connections == 0)
                d->max_connections = 4096;
        if (d->n_allow_udp_ports > 0 && d->mode != MODE_TCP)
                return errorf(ret_error, -EINVAL, "%s: AllowUDPPorts= needs Mode=tcp", f);
        if (d->n_upstreams > 0)
                log_warning("%s: Upstream= has no meaning for a server, ignoring.", f);
        if (d->proxy_protocol > PROXY_PROTOCOL_NO || d->n_proxy_protocol_ports > 0)
                log_warning("%s: ProxyProtocol= is for the tunnel client, which writes the header to its "
                            "upstreams; ignoring.", f);
        if (!!d->https_certificate_file != !!d->https_key_file)
                return errorf(ret_error, -EINVAL,
                              "%s: HTTPSCertificateFile= and HTTPSKeyFile= must be set together", f);
        if (!address_unset(&d->https_listen) && d->mode != MODE_HTTP)
                log_warning("%s: HTTPSListen= is for Mode=http, ignoring.", f);
        if (!address_unset(&d->https_listen) && !d->https_certificate_file && !d->certificate_file &&
            !d->auto_tls && d->n_acme_domains == 0)
                return errorf(ret_error, -EINVAL,
                              "%s: HTTPSListen= needs HTTPSCertificateFile=, CertificateFile= or AutoTLS=yes", f);
        return 0;
}

/* Upstream= and Ports= as the mode wants them (TCP: one host, default 127.0.0.1; HTTP: URLs). */
static int client_check_upstreams(Definition *d, const char *f, char **ret_error) {
        if (d->mode == MODE_TCP) {
                if (d->n_ports == 0 && d->n_udp_ports == 0)
                        return errorf(ret_error, -EINVAL, "%s: Ports= (or UDPPorts=) is not set in [Client]", f);
                if (d->n_upstreams > 1)
                        return errorf(ret_error, -EINVAL,
                                         "%s: TCP mode takes one Upstream= host, %zu given", f, d->n_upstreams);
                if (d->n_upstreams == 0 &&
                    strv_push(&d->upstreams, &d->n_upstreams, strdup("127.0.0.1")) < 0)
                        return -ENOMEM;
        } else if (d->n_upstreams == 0)
                return errorf(ret_error, -EINVAL, "%s: Upstream= is not set in [Client]", f);
        for (size_t i = 0; i < d->n_upstreams; i++) {
                bool url = strstr(d->upstreams[i], "://");
                if (d->mode == MODE_HTTP && !url)
                        return errorf(ret_error, -EINVAL,
                                      "%s: Upstream=%s: HTTP mode takes [HOST=]http(s)://HOST[:PORT] URLs", f,
                                      d->upstreams[i]);
                if (d->mode == MODE_TCP && url)
                        return errorf(ret_error, -EINVAL,
                                      "%s: Upstream=%s: TCP mode takes a host name or address, not a URL "
                                      "(Mode=http?)", f, d->upstreams[i]);
        }
        if (d->mode == MODE_HTTP && d->n_ports > 0)
                log_warning("%s: Ports= has no meaning in HTTP mode, ignoring.", f);
        if (d->mode == MODE_HTTP && d->n_udp_ports > 0)
                return errorf(ret_error, -EINVAL, "%s: UDPPorts= needs Mode=tcp", f);
        return 0;
}

/* A tunnel client's own lists may scope only what it offers: public ports of Ports=, hosts of
 * Upstream=HOST=URL (the exit server checks the same). */
static int client_check_access_offer(Definition *d, const char *f, char **ret_error) {
        for (size_t i = 0; i < d->access.n_rules; i++) {
                const AccessRule *a = &d->access.rules[i];
                bool found = false;

                if (!a->scope)
                        continue;
                if (d->mode == MODE_TCP) {
                        unsigned port;
                        if (parse_unsigned(a->scope, &port) >= 0) {
                                for (size_t j = 0; j < d->n_ports && !found; j++)
                                        found = d->ports[j].public_port == port;
                                for (size_t j = 0; j < d->n_udp_ports && !found; j++)
                                        found = d->udp_ports[j].public_port == port;
                        }
                } else
                        for (size_t j = 0; j < d->n_upstreams && !found; j++) {
                                HttpUpstream u;
                                if (http_upstream_parse(d->upstreams[j], &u) < 0)
                                        continue;
                                found = u.match && streq(u.match, a->scope);
                                http_upstream_done(&u);
                        }
                if (!found)
                        return errorf(ret_error, -EINVAL, "%s: %s=%s=…: %s %s is not served by this client (%s)", f,
                                      a->allow ? "AllowFrom" : "DenyFrom", a->scope,
                                      d->mode == MODE_TCP ? "port" : "host", a->scope,
                                      d->mode == MODE_TCP ? "a public port of Ports= or UDPPorts=" : "an Upstream=HOST=URL");
        }
        return 0;
}

/* HTTP rules: HTTP mode, and only for hosts an Upstream= names (a rule for another would guard
 * nothing: fail loudly). */
static int client_check_http_rules(Definition *d, const char *f, char **ret_error) {
        _cleanup_strv_free_ char **hosts = NULL;
        size_t n = 0;
        const char *unknown;

        if (http_rules_empty(&d->http_rules))
                return 0;
        if (d->mode != MODE_HTTP)
                return errorf(ret_error, -EINVAL, "%s: BasicAuthFile=, BearerTokenFile=, RateLimit=, "
                              "RequestHeader= and ResponseHeader= are for Mode=http", f);
        for (size_t i = 0; i < d->n_upstreams; i++) {
                HttpUpstream u;
                if (http_upstream_parse(d->upstreams[i], &u) < 0)
                        continue;
                if (u.match && strv_push(&hosts, &n, strdup(u.match)) < 0) {
                        http_upstream_done(&u);
                        return -ENOMEM;
                }
                http_upstream_done(&u);
        }
        unknown = http_rules_unknown_host(&d->http_rules, hosts, n);
        if (unknown)
                return errorf(ret_error, -EINVAL, "%s: an HTTP rule names host %s, which no Upstream=%s=URL serves",
                              f, unknown, unknown);
        return 0;
}

/* ProxyProtocol=: TCP mode, and only for ports the tunnel serves. */
static int client_check_proxy_protocol(Definition *d, const char *f, char **ret_error) {
        for (size_t i = 0; i < d->n_proxy_protocol_ports; i++) {
                const ProxyProtocolPort *p = &d->proxy_protocol_ports[i];
                bool served = false;

                /* HTTP mode has no ports: one value for every host. */
                if (d->mode == MODE_HTTP)
                        return errorf(ret_error, -EINVAL,
                                      "%s: ProxyProtocol=%s %u: HTTP mode takes one value for every host, no ports",
                                      f, proxy_protocol_to_string(p->version), p->public_port);
                for (size_t j = 0; j < d->n_ports; j++)
                        served = served || d->ports[j].public_port == p->public_port;
                if (!served && d->mode == MODE_TCP)
                        return errorf(ret_error, -EINVAL,
                                      "%s: ProxyProtocol=%s %u: port %u is not a public port of Ports=", f,
                                      proxy_protocol_to_string(p->version), p->public_port, p->public_port);
        }
        if (d->proxy_protocol < 0)
                d->proxy_protocol = PROXY_PROTOCOL_NO;
        return 0;
}

/* The first of names set in the environment (non-empty), or NULL. */
static const char *env_first(const char *const *names, const char **ret_name) {
        for (; *names; names++) {
                const char *v = getenv(*names);
                if (v && *v) {
                        *ret_name = *names;
                        return v;
                }
        }
        return NULL;
}

/* The proxy the tunnel goes through: Proxy= ("none": no proxy), else the environment as curl
 * reads it -- https_proxy/HTTPS_PROXY for wss://, http_proxy for ws:// (never HTTP_PROXY: a
 * CGI-set header), all_proxy/ALL_PROXY for either -- unless no_proxy/NO_PROXY exempts the exit
 * server. Parsed into d->proxy_url; the password stays out of every message. */
static int client_check_proxy(Definition *d, const char *f, char **ret_error) {
        static const char *const https_env[] = { "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY", NULL };
        static const char *const http_env[] = { "http_proxy", "all_proxy", "ALL_PROXY", NULL };
        static const char *const no_env[] = { "no_proxy", "NO_PROXY", NULL };
        const char *value, *reason = NULL, *no_name;
        TunnelURL u = {};
        int r;

        proxy_url_done(&d->proxy_url);
        d->proxy_source = NULL;
        if (d->proxy) {
                if (streq(d->proxy, "none"))
                        return 0;
                value = d->proxy;
                d->proxy_source = "Proxy=";
        } else {
                r = tunnel_url_parse(d->url, &u);
                if (r < 0)
                        return r == -ENOMEM ? r : 0; /* conf_url() checked it: not reached */
                value = env_first(u.tls ? https_env : http_env, &d->proxy_source);
                if (value && no_proxy_matches(env_first(no_env, &no_name), u.host, u.port))
                        value = NULL;
                tunnel_url_done(&u);
                if (!value)
                        return 0;
        }
        r = proxy_url_parse(value, &d->proxy_url, &reason);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return errorf(ret_error, -EINVAL, "%s: the proxy from %s is not valid: %s%s", f, d->proxy_source,
                              reason, streq(d->proxy_source, "Proxy=") ? "" : " (set Proxy=none to ignore it)");
        if (d->proxy_password_file && !d->proxy_url.user)
                return errorf(ret_error, -EINVAL, "%s: ProxyPasswordFile= needs a user name in the proxy URL "
                              "(http://USER@HOST:PORT)", f);
        return 0;
}

static int client_check(Definition *d, const char *f, char **ret_error) {
        int r;

        if (!d->url)
                return errorf(ret_error, -EINVAL, "%s: URL= is not set in [Client]", f);
        if (d->ca_file && d->has_fingerprint)
                return errorf(ret_error, -EINVAL, "%s: CAFile= and ServerFingerprint= exclude each other", f);
        /* A pin or a CA on ws:// would be checked against nothing, and the token would
         * go out in clear to whoever answers: say so rather than run. */
        if ((d->ca_file || d->has_fingerprint) && strncasecmp(d->url, "ws://", 5) == 0)
                return errorf(ret_error, -EINVAL, "%s: %s= needs a wss:// URL=, got %s", f,
                              d->has_fingerprint ? "ServerFingerprint" : "CAFile", d->url);
        r = client_check_upstreams(d, f, ret_error);
        if (r < 0)
                return r;
        r = client_check_proxy(d, f, ret_error);
        if (r < 0)
                return r;
        r = client_check_proxy_protocol(d, f, ret_error);
        if (r < 0)
                return r;
        r = check_access_scopes(d, f, ret_error);
        if (r < 0)
                return r;
        r = client_check_access_offer(d, f, ret_error);
        if (r < 0)
                return r;
        r = client_check_http_rules(d, f, ret_error);
        if (r < 0)
                return r;
        if (d->reconnect_max_delay_usec == 0)
                d->reconnect_max_delay_usec = 30 * USEC_PER_SEC;
        if (d->max_streams == 0)
                d->max_streams = 1024;
        return 0;
}

static int fileserver_check(Definition *d, const char *f, char **ret_error) {
        if (!d->webroot)
                return errorf(ret_error, -EINVAL, "%s: Webroot= is not set in [FileServer]", f);
        if (address_unset(&d->listen))
                (void) socket_address_parse("127.0.0.1", DEFAULT_FILESERVER_PORT, &d->listen);
        if (d->allow_browsing < 0)
                d->allow_browsing = false;
        if (d->allow_hidden < 0)
                d->allow_hidden = false;
        if (d->basic_auth < 0)
                d->basic_auth = true;
        if (d->max_clients == 0)
                d->max_clients = 512; /* connections */
        return 0;
}

/* Whether the role, as checked, authenticates its peers with the token. */
static bool needs_token(const Definition *d) {
        /* A fileserver with BasicAuth=no is explicitly open: no token needed. */
        return !(d->role == ROLE_FILESERVER && !d->basic_auth);
}

static int finish(Definition *d, bool token, char **ret_error) {
        const char *f = d->path ?: d->name ?: "definition";
        int r;

        assert(d);

        if (d->role < 0)
                return errorf(ret_error, -EINVAL,
                              "%s: Role= is not set in [Tunnel] (server, client or fileserver)", f);
        tunnel_defaults(d);
        /* Silently ignored, a list would look like protection that is not there. */
        if (d->role != ROLE_SERVER &&
            (d->control_access.n_rules > 0 || d->accept_proxy.n_rules > 0 || d->control_accept_proxy.n_rules > 0))
                return errorf(ret_error, -EINVAL, "%s: ControlAllowFrom=, AcceptProxyProtocol= and "
                              "ControlAcceptProxyProtocol= are for Role=server, not %s", f, role_to_string(d->role));
        /* [Server] lists guard the exit server, [Client] lists the client's own services: a list
         * in the other section would not do what it seems to. */
        if (d->access.n_rules > 0 && d->access_in_server && d->role != ROLE_SERVER)
                return errorf(ret_error, -EINVAL, "%s: AllowFrom= and DenyFrom= in [Server] are for Role=server%s",
                              f, d->role == ROLE_CLIENT ? "; a client's own lists go in [Client]" : "");
        if (d->access.n_rules > 0 && d->access_in_client && d->role != ROLE_CLIENT)
                return errorf(ret_error, -EINVAL, "%s: AllowFrom= and DenyFrom= in [Client] are for Role=client%s",
                              f, d->role == ROLE_SERVER ? "; an exit server's lists go in [Server]" : "");

        switch (d->role) {
        case ROLE_SERVER:
                r = server_check(d, f, ret_error);
                break;
        case ROLE_CLIENT:
                r = client_check(d, f, ret_error);
                break;
        case ROLE_FILESERVER:
                r = fileserver_check(d, f, ret_error);
                break;
        default:
                r = 0;
        }
        if (r < 0)
                return r;

        if (!token)
                return 0;
        /* Secrets, like the token: read by the daemon and inletsctl check, never the generator. */
        r = http_rules_load(&d->http_rules, ret_error);
        if (r >= 0)
                r = definition_load_proxy_password(d, ret_error);
        if (r < 0 || !needs_token(d))
                return r;
        return definition_load_token(d, ret_error);
}

int definition_finish(Definition *d, char **ret_error) {
        return finish(d, true, ret_error);
}

int definition_finish_no_token(Definition *d, char **ret_error) {
        return finish(d, false, ret_error);
}
