// SPDX-License-Identifier: LGPL-2.1-or-later
/* Unit tests for the definition parser: every key, errors with file:line, warnings, lists,
 * quoting, drop-ins, tokens. */

#include <arpa/inet.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "conf.h"
#include "crypto-util.h"
#include "fileio.h"
#include "log.h"
#include "macro.h"
#include "parse-util.h"
#include "socket-util.h"
#include "tests.h"
#include "time-util.h"

static char dir[] = "/tmp/test-conf-XXXXXX";

static char *write_file(const char *name, const char *content) {
        char *p;
        FILE *f;
        if (asprintf(&p, "%s/%s", dir, name) < 0)
                abort();
        f = fopen(p, "w");
        if (!f)
                abort();
        fputs(content, f);
        fclose(f);
        return p;
}

/* Loads content as NAME.conf; returns the error (or NULL) and the captured stderr. */
static int load(const char *content, Definition **ret, char **ret_error, char **ret_log) {
        _cleanup_free_ char *path = write_file("t.conf", content), *logpath = NULL;
        int saved = dup(STDERR_FILENO), fd, r;

        if (asprintf(&logpath, "%s/stderr", dir) < 0)
                abort();
        fd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        dup2(fd, STDERR_FILENO);
        close(fd);
        *ret_error = NULL;
        r = definition_load(path, NULL, ret, ret_error);
        fflush(stderr);
        dup2(saved, STDERR_FILENO);
        close(saved);
        if (ret_log)
                (void) read_full_file(logpath, 65536, ret_log, NULL);
        return r;
}

static void expect_error(const char *content, const char *needle) {
        Definition *d = NULL;
        _cleanup_free_ char *err = NULL, *log = NULL;
        int r = load(content, &d, &err, &log);
        CHECK(r < 0, "expected failure for: %s", content);
        CHECK_CONTAINS(err, needle);
        definition_free(d);
}

/* Loads content that must load: the definition, or NULL (a failed check). */
static Definition *parse_ok(const char *content) {
        Definition *d = NULL;
        _cleanup_free_ char *err = NULL;
        int r = load(content, &d, &err, NULL);
        CHECK(r == 0, "load failed: %s", err ?: "");
        return r == 0 ? d : NULL;
}

static void test_server_keys(void) {
        Definition *d = NULL;
        _cleanup_free_ char *err = NULL, *log = NULL;
        char buf[SOCKADDR_STR_MAX];
        int r = load("# a comment\n; another\n[Tunnel]\nRole=server\nMode=tcp\nToken=0123456789abcdef0123\n"
                     "KeepaliveSec=5s\nHandshakeTimeoutSec=500ms\nLogLevel=debug\n"
                     "[Server]\nControlListen=127.0.0.1:9000\nDataListen=[::1]\nHTTPListen=0.0.0.0:8080\n"
                     "AutoTLS=yes\nAutoTLSSAN=a.example.com 10.0.0.1\nAutoTLSSAN=\"b.example.com\"\n"
                     "StateDirectory=/var/lib/x\nAllowPorts=22 3000-3010\nMaxClients=5\n"
                     "MaxStreamsPerClient=7\nMaxFrameSize=1M\n",
                     &d, &err, &log);
        CHECK(r == 0, "load failed: %s", err);
        if (r < 0)
                return;
        CHECK(d->role == ROLE_SERVER && d->mode == MODE_TCP, "role/mode");
        CHECK_STR(d->token, "0123456789abcdef0123");
        CHECK(d->keepalive_usec == 5 * USEC_PER_SEC, "KeepaliveSec");
        CHECK(d->resume_usec == 30 * USEC_PER_SEC, "ResumeSec= unset: 30 s");
        CHECK(d->handshake_timeout_usec == 500 * USEC_PER_MSEC, "HandshakeTimeoutSec");
        CHECK(d->log_level == LOG_DEBUG, "LogLevel");
        CHECK_STR(socket_address_format(&d->control_listen, buf), "127.0.0.1:9000");
        CHECK(d->data_listen.sa.sa_family == AF_INET6, "DataListen family");
        CHECK_STR(socket_address_format(&d->http_listen, buf), "0.0.0.0:8080");
        CHECK(d->auto_tls == 1 && d->tls == 1, "AutoTLS");
        CHECK(d->n_auto_tls_san == 3, "3 SANs, got %zu", d->n_auto_tls_san);
        if (d->n_auto_tls_san == 3)
                CHECK_STR(d->auto_tls_san[2], "b.example.com");
        CHECK_STR(d->state_directory, "/var/lib/x");
        CHECK(definition_port_allowed(d, 22) && definition_port_allowed(d, 3005) &&
                      !definition_port_allowed(d, 23) && !definition_port_allowed(d, 3011),
              "AllowPorts");
        CHECK(d->max_clients == 5 && d->max_streams == 7 && d->max_frame_size == 1024 * 1024, "limits");
        CHECK(log == NULL || !strstr(log, "Unknown"), "no warnings expected, got %s", log);
        definition_free(d);
}

static void test_client_keys(void) {
        Definition *d = NULL;
        _cleanup_free_ char *err = NULL, *log = NULL, *tok = write_file("tok", "  0123456789abcdefXYZ \n");
        _cleanup_free_ char *conf = NULL;
        int r;

        if (asprintf(&conf,
                     "[Tunnel]\nRole=client\nTokenFile=tok\nResumeSec=0\n[Client]\nURL=wss://example.com:8123/base/connect\n"
                     "ServerFingerprint=sha256:%s\nUpstream=db.internal\nPorts=3389 2222:22\nPorts=5432\n"
                     "Ports=2022:git.internal:22 8443:[fd00::1]:443 9000:10.0.0.9:9001\n"
                     "ReconnectMaxDelaySec=1min\nClientID=rdp-1\n",
                     "ab:cd:ef:01:23:45:67:89:ab:cd:ef:01:23:45:67:89:ab:cd:ef:01:23:45:67:89:ab:cd:ef:01:23:45:67:89") < 0)
                abort();
        r = load(conf, &d, &err, &log);
        CHECK(r == 0, "load failed: %s", err);
        if (r < 0)
                return;
        CHECK(d->resume_usec == 0, "ResumeSec=0: off");
        CHECK_STR(d->token, "0123456789abcdefXYZ"); /* relative TokenFile=, whitespace stripped */
        CHECK(d->has_fingerprint && d->server_fingerprint[0] == 0xab && d->server_fingerprint[31] == 0x89,
              "fingerprint");
        CHECK(d->n_ports == 6, "6 ports, got %zu", d->n_ports);
        if (d->n_ports == 6) {
                CHECK(d->ports[0].public_port == 3389 && d->ports[0].upstream_port == 3389 &&
                              d->ports[1].public_port == 2222 && d->ports[1].upstream_port == 22 &&
                              d->ports[2].public_port == 5432 && !d->ports[2].host,
                      "port maps");
                CHECK(d->ports[3].public_port == 2022 && d->ports[3].upstream_port == 22, "PUBLIC:HOST:PORT");
                CHECK_STR(d->ports[3].host, "git.internal");
                CHECK_STR(d->ports[4].host, "fd00::1");
                CHECK(d->ports[4].upstream_port == 443, "[v6] host");
                CHECK_STR(port_map_host(d, &d->ports[5]), "10.0.0.9");
                CHECK_STR(port_map_host(d, &d->ports[0]), "db.internal");
        }
        CHECK_STR(d->upstreams[0], "db.internal");
        CHECK(d->reconnect_max_delay_usec == 60 * USEC_PER_SEC, "ReconnectMaxDelaySec");
        CHECK_STR(d->client_id, "rdp-1");
        expect_error("[Tunnel]\nRole=client\nToken=0123456789abcdef\n[Client]\nURL=wss://h\nPorts=1:bad_host:2\n",
                     "the host of PUBLIC:HOST:UPSTREAM is not a host name or an address");
        expect_error("[Tunnel]\nRole=client\nToken=0123456789abcdef\n[Client]\nURL=wss://h\nPorts=1:h:0\n",
                     "expected PORT, PUBLIC:UPSTREAM or PUBLIC:HOST:UPSTREAM, ports 1-65535");
        expect_error("[Tunnel]\nRole=client\nToken=0123456789abcdef\n[Client]\nURL=wss://h\nPorts=1:[::1:2\n",
                     "is not a host name or an address");
        /* An IPv6 host only in brackets; brackets only around one. */
        expect_error("[Tunnel]\nRole=client\nToken=0123456789abcdef\n[Client]\nURL=wss://h\nPorts=80:::1:90\n",
                     "(IPv6 in brackets)");
        expect_error("[Tunnel]\nRole=client\nToken=0123456789abcdef\n[Client]\nURL=wss://h\nPorts=80:[10.0.0.1]:90\n",
                     "(IPv6 in brackets)");
        {
                TunnelURL u;
                CHECK(tunnel_url_parse(d->url, &u) == 0, "URL parses");
                CHECK(u.tls && u.port == 8123, "URL tls/port");
                CHECK_STR(u.host, "example.com");
                CHECK_STR(u.path, "/base/connect");
                tunnel_url_done(&u);
                CHECK(tunnel_url_parse("ws://[::1]", &u) == 0 && !u.tls && u.port == 80, "ws://[::1]");
                CHECK_STR(u.path, "/connect");
                CHECK_STR(u.host, "::1");
                tunnel_url_done(&u);
                CHECK(tunnel_url_parse("https://x", &u) < 0, "https:// refused");
        }
        definition_free(d);
}

/* ProxyProtocol=: tunnel-wide, per public port (winning), TCP mode only. */
static void test_proxy_protocol(void) {
        const char *head = "[Tunnel]\nRole=client\nToken=0123456789abcdef\n[Client]\nURL=wss://h\n"
                           "Ports=25 443:8443 2222:22\n";
        _cleanup_free_ char *c1 = NULL, *c2 = NULL, *c3 = NULL, *c4 = NULL, *c5 = NULL, *c6 = NULL;
        Definition *d = NULL;
        _cleanup_free_ char *err = NULL, *log = NULL;
        int r;

        if (asprintf(&c1, "%s", head) < 0 || asprintf(&c2, "%sProxyProtocol=v2\nProxyProtocol=no 2222\n", head) < 0 ||
            asprintf(&c3, "%sProxyProtocol=v1 25 443\nProxyProtocol=v2 443\n", head) < 0 ||
            asprintf(&c4, "%sProxyProtocol=v2\nProxyProtocol=v1 25\nProxyProtocol=\n", head) < 0 ||
            asprintf(&c5, "%sProxyProtocol=v1 80\n", head) < 0 || asprintf(&c6, "%sProxyProtocol=v3\n", head) < 0)
                abort();

        r = load(c1, &d, &err, NULL);
        CHECK(r == 0, "no ProxyProtocol=: %s", err);
        if (r == 0)
                CHECK(d->proxy_protocol == PROXY_PROTOCOL_NO && definition_proxy_protocol(d, 25) == PROXY_PROTOCOL_NO,
                      "default: no");
        d = definition_free(d);

        r = load(c2, &d, &err, NULL);
        CHECK(r == 0, "v2 and no 2222: %s", err);
        if (r == 0)
                CHECK(definition_proxy_protocol(d, 25) == PROXY_PROTOCOL_V2 &&
                      definition_proxy_protocol(d, 443) == PROXY_PROTOCOL_V2 &&
                      definition_proxy_protocol(d, 2222) == PROXY_PROTOCOL_NO,
                      "tunnel-wide v2, port 2222 off");
        d = definition_free(d);

        r = load(c3, &d, &err, NULL);
        CHECK(r == 0, "per port: %s", err);
        if (r == 0)
                CHECK(definition_proxy_protocol(d, 25) == PROXY_PROTOCOL_V1 &&
                      definition_proxy_protocol(d, 443) == PROXY_PROTOCOL_V2 &&
                      definition_proxy_protocol(d, 2222) == PROXY_PROTOCOL_NO && d->n_proxy_protocol_ports == 2,
                      "25 v1, 443 v2 (the later line wins), 2222 none");
        d = definition_free(d);

        r = load(c4, &d, &err, NULL);
        CHECK(r == 0, "reset: %s", err);
        if (r == 0)
                CHECK(definition_proxy_protocol(d, 25) == PROXY_PROTOCOL_NO &&
                      definition_proxy_protocol(d, 443) == PROXY_PROTOCOL_NO && d->n_proxy_protocol_ports == 0,
                      "an empty ProxyProtocol= resets all");
        d = definition_free(d);

        expect_error(c5, "ProxyProtocol=v1 80: port 80 is not a public port of Ports=");
        expect_error(c6, "t.conf:7: Invalid ProxyProtocol= value 'v3': expected no, v1 or v2");
        expect_error("[Tunnel]\nRole=client\nToken=0123456789abcdef\n[Client]\nURL=wss://h\nPorts=25\n"
                     "ProxyProtocol=v1 http\n", "expected public ports");
        expect_error("[Tunnel]\nRole=client\nMode=http\nToken=0123456789abcdef\n[Client]\nURL=wss://h\n"
                     "Upstream=http://127.0.0.1:80\nProxyProtocol=v2 80\n",
                     "ProxyProtocol=v2 80: HTTP mode takes one value for every host, no ports");
        {
                Definition *h = NULL;
                _cleanup_free_ char *e = NULL;
                int k = load("[Tunnel]\nRole=client\nMode=http\nToken=0123456789abcdef\n[Client]\nURL=wss://h\n"
                             "Upstream=http://127.0.0.1:80\nProxyProtocol=v2\n", &h, &e, NULL);
                CHECK(k == 0 && h->proxy_protocol == PROXY_PROTOCOL_V2, "HTTP mode, tunnel-wide: %s", e ?: "");
                definition_free(h);
        }
        r = load("[Tunnel]\nRole=client\nMode=http\nToken=0123456789abcdef\n[Client]\nURL=wss://h\n"
                 "Upstream=http://127.0.0.1:80\nProxyProtocol=no\n", &d, &err, NULL);
        CHECK(r == 0, "ProxyProtocol=no in HTTP mode is fine: %s", err);
        d = definition_free(d);
        r = load("[Tunnel]\nRole=server\nToken=0123456789abcdef\n[Client]\nProxyProtocol=v1\n", &d, &err, &log);
        CHECK(r == 0, "server with ProxyProtocol=: loads, %s", err);
        CHECK_CONTAINS(log, "ProxyProtocol= is for the tunnel client");
        d = definition_free(d);
        printf("conf: ProxyProtocol= tunnel-wide, per port (later wins, reset), errors, HTTP mode refused\n");
}

static void test_lists_and_quotes(void) {
        Definition *d = NULL;
        _cleanup_free_ char *err = NULL;
        int r = load("[Tunnel]\nRole = client \nToken=\"0123456789abcdef0123\"\n[Client]\nURL='wss://h'\n"
                     "Ports=1 2 3\nPorts=\nPorts=4,5\n",
                     &d, &err, NULL);
        CHECK(r == 0, "load failed: %s", err);
        if (r < 0)
                return;
        CHECK(d->n_ports == 2 && d->ports[0].public_port == 4 && d->ports[1].public_port == 5,
              "empty assignment resets Ports=, got %zu", d->n_ports);
        CHECK_STR(d->token, "0123456789abcdef0123");
        CHECK_STR(d->url, "wss://h");
        CHECK_STR(d->upstreams[0], "127.0.0.1"); /* default upstream */
        definition_free(d);
}

static bool allows(const AccessList *l, const char *scope, const char *addr) {
        SocketAddress a;
        if (socket_address_parse(addr, 1, &a) < 0)
                abort();
        return access_list_allows(l, scope, &a);
}

static void test_access_keys(void) {
        static const char base[] = "[Tunnel]\nRole=server\nToken=0123456789abcdef\nMode=%s\n[Server]\nTLS=no\n%s";
        static const struct { const char *mode, *keys, *error; } errors[] = {
                { "tcp", "AllowFrom=10.0.0.0/8 10.1.2.3/8\n",
                  "t.conf:7: Invalid AllowFrom= value '10.0.0.0/8 10.1.2.3/8': '10.1.2.3/8': address has bits set" },
                { "tcp", "DenyFrom=example.com\n", "t.conf:7: Invalid DenyFrom= value 'example.com': expected a numeric" },
                { "tcp", "AllowFrom=10.0.0.0/40\n", "t.conf:7: Invalid AllowFrom= value '10.0.0.0/40': IPv4 prefix length" },
                { "tcp", "AllowFrom=\nAllowFrom=0=10.0.0.0/8\n", "t.conf:8: Invalid AllowFrom= value '0=10.0.0.0/8'" },
                { "tcp", "AllowFrom==10.0.0.0/8\n", "empty scope" },
                { "tcp", "AllowFrom=a_b=10.0.0.0/8\n", "host name" },
                { "tcp", "ControlAllowFrom=8123=10.0.0.0/8\n",
                  "t.conf:7: Invalid ControlAllowFrom= value '8123=10.0.0.0/8': this list takes addresses" },
                { "tcp", "AllowFrom=app.example.com=10.0.0.0/8\n",
                  "t.conf: AllowFrom=app.example.com=10.0.0.0/8: a host scope is for Mode=http" },
                { "http", "DenyFrom=10.0.0.1 3389=10.0.0.0/8\n",
                  "t.conf: DenyFrom=3389=10.0.0.0/8: a port scope is for Mode=tcp" },
                { "tcp", "AcceptProxyProtocol=10.0.0.5 lb.example.com\n",
                  "t.conf:7: Invalid AcceptProxyProtocol= value '10.0.0.5 lb.example.com': 'lb.example.com': "
                  "expected a numeric" },
                { "tcp", "AcceptProxyProtocol=3389=10.0.0.5\n",
                  "t.conf:7: Invalid AcceptProxyProtocol= value '3389=10.0.0.5': this list takes addresses" },
                { "http", "\nControlAcceptProxyProtocol=10.0.0.0/33\n",
                  "t.conf:8: Invalid ControlAcceptProxyProtocol= value '10.0.0.0/33': IPv4 prefix length" },
        };
        Definition *d = NULL;
        _cleanup_free_ char *err = NULL, *conf = NULL;
        int r;

        for (size_t i = 0; i < ELEMENTSOF(errors); i++) {
                _cleanup_free_ char *c = NULL;
                if (asprintf(&c, base, errors[i].mode, errors[i].keys) < 0)
                        abort();
                expect_error(c, errors[i].error);
        }

        /* Lines accumulate, an empty assignment resets that key only, drop-in order is kept. */
        if (asprintf(&conf, base, "http",
                     "AllowFrom=192.0.2.1\nAllowFrom=\nAllowFrom=10.0.0.0/8,2001:db8::/32\n"
                     "DenyFrom=10.66.0.0/16 App.Example.com=10.0.0.0/8\nAllowFrom=app.example.com=10.1.0.0/16\n"
                     "ControlAllowFrom=127.0.0.1\nControlAllowFrom=::1\n"
                     "AcceptProxyProtocol=10.0.0.5 10.0.1.0/24\nControlAcceptProxyProtocol=any\n") < 0)
                abort();
        r = load(conf, &d, &err, NULL);
        CHECK(r == 0, "load failed: %s", err);
        if (r == 0) {
                CHECK(d->access.n_rules == 5, "5 rules, got %zu", d->access.n_rules);
                CHECK(d->control_access.n_rules == 2, "2 control rules, got %zu", d->control_access.n_rules);
                CHECK(!allows(&d->access, NULL, "192.0.2.1"), "AllowFrom= reset drops 192.0.2.1");
                CHECK(allows(&d->access, NULL, "10.1.2.3"), "10.1.2.3 allowed tunnel-wide");
                CHECK(!allows(&d->access, NULL, "10.66.2.3"), "10.66.0.0/16 denied");
                CHECK(allows(&d->access, "APP.example.com", "10.1.2.3"), "app host allows 10.1/16");
                CHECK(!allows(&d->access, "app.example.com", "10.2.2.3"), "app host denies the rest of 10/8");
                CHECK(allows(&d->access, "other.example.com", "10.2.2.3"), "another host: tunnel-wide");
                CHECK(allows(&d->control_access, NULL, "[::1]") && !allows(&d->control_access, NULL, "10.1.2.3"),
                      "ControlAllowFrom=");
                CHECK(allows(&d->accept_proxy, NULL, "10.0.1.9") && !allows(&d->accept_proxy, NULL, "10.0.0.6"),
                      "AcceptProxyProtocol=");
                CHECK(d->control_accept_proxy.n_rules == 2 && allows(&d->control_accept_proxy, NULL, "[2001:db8::1]"),
                      "ControlAcceptProxyProtocol=any");
        }
        d = definition_free(d);
        err = mfree(err);

        /* Only an exit server has these lists: anywhere else they would protect nothing. */
        expect_error("[Tunnel]\nRole=client\nToken=0123456789abcdef\n[Client]\nURL=wss://h\nPorts=1\n"
                     "[Server]\nControlAllowFrom=10.0.0.0/8\n",
                     "ControlAllowFrom=, AcceptProxyProtocol= and ControlAcceptProxyProtocol= are for "
                     "Role=server, not client");
        expect_error("[Tunnel]\nRole=client\nToken=0123456789abcdef\n[Client]\nURL=wss://h\nPorts=1\n"
                     "[Server]\nAcceptProxyProtocol=10.0.0.5\n", "are for Role=server, not client");
        expect_error("[Tunnel]\nRole=fileserver\n[FileServer]\nWebroot=/srv\nBasicAuth=no\n"
                     "[Server]\nControlAllowFrom=any\n",
                     "are for Role=server, not fileserver");
        /* A client's own lists: in [Client], scoped by what it serves. */
        r = load("[Tunnel]\nRole=client\nToken=0123456789abcdef\n[Client]\nURL=wss://h\nPorts=3389 2222:22\n"
                 "AllowFrom=3389=192.0.2.0/24 10.0.0.0/8\nDenyFrom=2222=10.66.0.0/16\n", &d, &err, NULL);
        CHECK(r == 0, "client lists: %s", err);
        /* Tunnel-wide and scope must both allow: 192.0.2.9 is outside 10.0.0.0/8. */
        CHECK(r < 0 || (d->access.n_rules == 3 && !allows(&d->access, "3389", "192.0.2.9") &&
                        !allows(&d->access, "3389", "10.1.1.1") && !allows(&d->access, "2222", "10.66.1.1") &&
                        allows(&d->access, "2222", "10.1.1.1")), "client lists decide");
        d = definition_free(d);
        err = mfree(err);
        expect_error("[Tunnel]\nRole=client\nToken=0123456789abcdef\n[Client]\nURL=wss://h\nPorts=3389\n"
                     "AllowFrom=25=192.0.2.0/24\n",
                     "AllowFrom=25=…: port 25 is not served by this client (a public port of Ports= or UDPPorts=)");
        expect_error("[Tunnel]\nRole=client\nMode=http\nToken=0123456789abcdef\n[Client]\nURL=wss://h\n"
                     "Upstream=a.test=http://127.0.0.1:1\nDenyFrom=b.test=192.0.2.0/24\n",
                     "DenyFrom=b.test=…: host b.test is not served by this client (an Upstream=HOST=URL)");
        expect_error("[Tunnel]\nRole=client\nToken=0123456789abcdef\n[Client]\nURL=wss://h\nPorts=1\n"
                     "[Server]\nAllowFrom=10.0.0.0/8\n",
                     "AllowFrom= and DenyFrom= in [Server] are for Role=server; a client's own lists go in [Client]");
        expect_error("[Tunnel]\nRole=server\nToken=0123456789abcdef\n[Server]\nTLS=no\n[Client]\nAllowFrom=10.0.0.0/8\n",
                     "AllowFrom= and DenyFrom= in [Client] are for Role=client; an exit server's lists go in [Server]");
        /* ...unless reset to nothing. */
        r = load("[Tunnel]\nRole=client\nToken=0123456789abcdef\n[Client]\nURL=wss://h\nPorts=1\n"
                 "[Server]\nDenyFrom=10.0.0.0/8\nDenyFrom=\n", &d, &err, NULL);
        CHECK(r == 0, "an emptied list on a client: %s", err);
        definition_free(d);
        printf("test-conf: AllowFrom=, DenyFrom=, ControlAllowFrom=, AcceptProxyProtocol=, "
               "ControlAcceptProxyProtocol=\n");
}

static void test_warnings(void) {
        Definition *d = NULL;
        _cleanup_free_ char *err = NULL, *log = NULL;
        int r = load("[Tunnel]\nRole=server\nToken=0123456789abcdef\nFrobnicate=1\n[Nope]\nX=1\n", &d, &err, &log);
        CHECK(r == 0, "unknown keys must not fail: %s", err);
        CHECK_CONTAINS(log, "t.conf:4: Unknown key Frobnicate= in [Tunnel]");
        CHECK_CONTAINS(log, "t.conf:5: Unknown section [Nope]");
        definition_free(d);
}

static void test_errors(void) {
        expect_error("[Tunnel]\nRole=router\n", "t.conf:2: Invalid Role= value 'router'");
        expect_error("[Tunnel]\nRole=client\nToken=0123456789abcdef\n[Client]\nURL=wss://h\nPorts=70000\n",
                     "t.conf:6: Invalid Ports= value '70000'");
        expect_error("[Tunnel]\nRole=client\nToken=0123456789abcdef\n[Client]\nURL=wss://h\nPorts=1 1\n",
                     "public port listed twice");
        expect_error("[Tunnel]\nRole=server\n[Server]\nControlListen=example.com:80\n",
                     "t.conf:4: Invalid ControlListen= value");
        expect_error("[Tunnel]\nRole=server\n[Server]\nAutoTLS=maybe\n", "t.conf:4: Invalid AutoTLS= value 'maybe'");
        expect_error("[Tunnel]\nRole=server\nKeepaliveSec=0\n", "t.conf:3: Invalid KeepaliveSec= value");
        expect_error("[Tunnel]\nRole=server\nKeepaliveSec=5 parsecs\n", "t.conf:3");
        expect_error("[Tunnel]\nRole=server\nResumeSec=2h\n", "t.conf:3: Invalid ResumeSec= value '2h': at most 1h");
        expect_error("[Tunnel]\nRole=server\nResumeSec=-1\n", "t.conf:3: Invalid ResumeSec= value");
        expect_error("[Tunnel]\nRole=client\n[Client]\nServerFingerprint=md5:00\n", "t.conf:4");
        expect_error("[Tunnel]\nRole=client\n[Client]\nURL=http://x\n", "t.conf:4: Invalid URL=");
        expect_error("[Tunnel]\nRole=server\n[Server]\nAllowPorts=10-5\n", "t.conf:4");
        expect_error("[Tunnel]\nRole=client\n[Client]\nClientID=a b\n", "t.conf:4");
        expect_error("Role=server\n", "t.conf:1: Assignment outside of any section");
        expect_error("[Tunnel]\nRole\n", "t.conf:2: Expected Key=Value");
        expect_error("[Tunnel\n", "t.conf:1: Invalid section header");
        expect_error("[Tunnel]\nMode=tcp\n", "Role= is not set");
        expect_error("[Tunnel]\nRole=client\nToken=0123456789abcdef\n", "URL= is not set");
        expect_error("[Tunnel]\nRole=client\nToken=0123456789abcdef\n[Client]\nURL=wss://h\n", "Ports= (or UDPPorts=) is not set");
        expect_error("[Tunnel]\nRole=client\nToken=0123456789abcdef\n[Client]\nURL=wss://h\nPorts=1\n"
                     "Upstream=a\nUpstream=b\n",
                     "TCP mode takes one Upstream=");
        expect_error("[Tunnel]\nRole=server\nToken=0123456789abcdef\n[Server]\nCertificateFile=/x\n",
                     "CertificateFile= and KeyFile= must be set together");
        expect_error("[Tunnel]\nRole=server\nToken=0123456789abcdef\n[Server]\nAutoTLS=no\n",
                     "TLS needs AutoTLS=yes or CertificateFile=");
        /* Secrets are never echoed. */
        expect_error("[Tunnel]\nRole=server\nToken=short-secret\n", "shorter than 16 bytes");
        {
                Definition *d = NULL;
                _cleanup_free_ char *err = NULL;
                (void) load("[Tunnel]\nRole=server\nToken=short-secret\n", &d, &err, NULL);
                CHECK(err && !strstr(err, "short-secret"), "token echoed in '%s'", err);
        }
        expect_error("[Tunnel]\nRole=server\nToken=has space in the token\n", "spaces or control characters");
}

/* Loads content as t.conf; 0 with the token in *ret_token (to be freed), or the error. */
static int load_token_of(const char *content, char **ret_token, char **ret_error) {
        Definition *d = NULL;
        int r = load(content, &d, ret_error, NULL);
        if (r >= 0)
                *ret_token = strdup(d->token);
        definition_free(d);
        return r;
}

/* TokenFile= naming t.token beside t.conf is what inletsd@.service passes as credential "token"
 * (LoadCredential=token:/etc/inlets.d/%i.token): systemd's copy is read, so the README's
 * TokenFile=/etc/inlets.d/rdp.token works for a daemon that may not open the root-only file. */
static void test_token_file_credential(const char *creds) {
        _cleanup_free_ char *beside = NULL, *conf_abs = NULL, *conf_link = NULL, *conf_other = NULL;
        const char *want_cred = "credential-token-0123456789", *want_file = "file-token-0123456789abc";
        pid_t pid;
        int status;

        free(write_file("t.token", "file-token-0123456789abc\n"));
        free(write_file("other.token", "other-token-0123456789abc\n"));
        if (asprintf(&beside, "%s/t.token", dir) < 0 ||
            asprintf(&conf_abs, "[Tunnel]\nRole=server\nTokenFile=%s/t.token\n", dir) < 0 ||
            asprintf(&conf_link, "[Tunnel]\nRole=server\nTokenFile=%s/link.token\n", dir) < 0 ||
            asprintf(&conf_other, "[Tunnel]\nRole=server\nTokenFile=%s/other.token\n", dir) < 0)
                abort();
        {
                _cleanup_free_ char *l = NULL;
                if (asprintf(&l, "%s/link.token", dir) < 0 || symlink(beside, l) < 0)
                        abort();
        }

        setenv("CREDENTIALS_DIRECTORY", creds, 1);
        struct {
                const char *conf, *want;
        } cases[] = {
                { "[Tunnel]\nRole=server\nTokenFile=t.token\n", want_cred },  /* relative */
                { conf_abs, want_cred },                                        /* absolute */
                { conf_link, want_cred },                                       /* the same file by another name */
                { conf_other, "other-token-0123456789abc" },                    /* another file: read as named */
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ char *e = NULL, *tok = NULL;
                CHECK(load_token_of(cases[i].conf, &tok, &e) == 0, "TokenFile= case %zu: %s", i, e);
                CHECK_STR(tok, cases[i].want);
        }
        /* A credentials directory without "token": the file itself. */
        {
                _cleanup_free_ char *e = NULL, *tok = NULL;
                setenv("CREDENTIALS_DIRECTORY", dir, 1);
                CHECK(load_token_of("[Tunnel]\nRole=server\nTokenFile=t.token\n", &tok, &e) == 0, "no credential: %s", e);
                CHECK_STR(tok, want_file);
        }
        /* No credentials at all (inletsctl check as root, a foreground run): the file itself. */
        unsetenv("CREDENTIALS_DIRECTORY");
        {
                _cleanup_free_ char *e = NULL, *tok = NULL;
                CHECK(load_token_of("[Tunnel]\nRole=server\nTokenFile=t.token\n", &tok, &e) == 0, "no creds: %s", e);
                CHECK_STR(tok, want_file);
        }

        /* As the unit runs it: not root, the token files root's and 0600, the credential the
         * service user's. Needs root to set up; the documented way must work unchanged. */
        if (geteuid() != 0) {
                printf("test-conf: not root, skipped the unprivileged TokenFile= check\n");
                return;
        }
        _cleanup_free_ char *cred_file = NULL, *other = NULL, *t_conf = write_file("t.conf", conf_abs),
                            *o_conf = write_file("o.conf", conf_other);
        if (asprintf(&cred_file, "%s/token", creds) < 0)
                abort();
        if (asprintf(&other, "%s/other.token", dir) < 0)
                abort();
        if (chmod(dir, 0711) < 0 || chmod(beside, 0600) < 0 || chmod(other, 0600) < 0 || chown(creds, 65534, 65534) < 0 ||
            chown(cred_file, 65534, 65534) < 0)
                abort();
        pid = fork();
        if (pid == 0) {
                _cleanup_free_ char *e = NULL;
                Definition *d = NULL;
                int r;

                if (setresgid(65534, 65534, 65534) < 0 || setresuid(65534, 65534, 65534) < 0)
                        _exit(10);
                setenv("CREDENTIALS_DIRECTORY", creds, 1);
                if (definition_load(t_conf, NULL, &d, &e) < 0 || strcmp(d->token, want_cred) != 0)
                        _exit(11);
                d = definition_free(d);
                free(TAKE_PTR(e));
                /* Another root-only file stays unreadable, and the error says what to do. */
                r = definition_load(o_conf, NULL, &d, &e);
                if (r != -EACCES || !e || !strstr(e, "credential 'token'"))
                        _exit(12);
                _exit(0);
        }
        CHECK(pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0,
              "as an unprivileged user, TokenFile= of the root-only NAME.token reads the credential (exit %d)",
              WIFEXITED(status) ? WEXITSTATUS(status) : -1);
        (void) chmod(dir, 0700);
        (void) chown(creds, 0, 0);
        (void) chown(cred_file, 0, 0);
}

static void test_files(void) {
        Definition *d = NULL;
        _cleanup_free_ char *err = NULL, *path = NULL, *sub = NULL;

        CHECK(definition_load("/nonexistent/x.conf", NULL, &d, &err) == -ENOENT, "missing file");
        CHECK_CONTAINS(err, "/nonexistent/x.conf: No such file or directory");
        free(TAKE_PTR(err));

        expect_error("[Tunnel]\nRole=server\nTokenFile=/nonexistent/token\n",
                     "cannot read token file /nonexistent/token: No such file or directory");
        /* A directory cannot be read as a token, even by root. */
        expect_error("[Tunnel]\nRole=server\nTokenFile=/\n", "cannot read token file /: Is a directory");
        /* No token at all. */
        unsetenv("CREDENTIALS_DIRECTORY");
        expect_error("[Tunnel]\nRole=server\n", "no token");
        /* NAME.token beside NAME.conf. */
        free(write_file("t.token", "beside-token-0123456789\n"));
        {
                _cleanup_free_ char *e = NULL;
                CHECK(load("[Tunnel]\nRole=server\n", &d, &e, NULL) == 0, "token beside: %s", e);
                if (d)
                        CHECK_STR(d->token, "beside-token-0123456789");
                d = definition_free(d);
                free(path);
                if (asprintf(&path, "%s/t.token", dir) < 0)
                        abort();
                unlink(path);
        }
        /* The systemd credential. */
        if (asprintf(&sub, "%s/creds", dir) < 0)
                abort();
        mkdir(sub, 0700);
        free(write_file("creds/token", "credential-token-0123456789\n"));
        setenv("CREDENTIALS_DIRECTORY", sub, 1);
        {
                _cleanup_free_ char *e = NULL;
                CHECK(load("[Tunnel]\nRole=server\n", &d, &e, NULL) == 0, "credential: %s", e);
                if (d)
                        CHECK_STR(d->token, "credential-token-0123456789");
                d = definition_free(d);
        }
        unsetenv("CREDENTIALS_DIRECTORY");
        test_token_file_credential(sub);

        /* Drop-ins override in lexical order. */
        free(sub);
        if (asprintf(&sub, "%s/t.conf.d", dir) < 0)
                abort();
        mkdir(sub, 0700);
        free(write_file("t.conf.d/20-b.conf", "[Server]\nMaxClients=20\n"));
        free(write_file("t.conf.d/10-a.conf", "[Server]\nMaxClients=10\nAllowPorts=80\n"));
        free(write_file("t.conf.d/ignored.txt", "garbage"));
        {
                _cleanup_free_ char *e = NULL;
                CHECK(load("[Tunnel]\nRole=server\nToken=0123456789abcdef\n", &d, &e, NULL) == 0, "drop-ins: %s", e);
                if (d)
                        CHECK(d->max_clients == 20 && d->n_allow_ports == 2, "drop-in values, got %u",
                              d->max_clients);
                d = definition_free(d);
        }
        free(write_file("t.conf.d/30-bad.conf", "[Server]\nMaxClients=lots\n"));
        expect_error("[Tunnel]\nRole=server\nToken=0123456789abcdef\n", "t.conf.d/30-bad.conf:2: Invalid MaxClients=");
        (void) path;
}

static void test_parsers(void) {
        uint64_t u;
        uint16_t p;
        char *h = NULL;
        CHECK(parse_sec("1min 30s", &u) == 0 && u == 90 * USEC_PER_SEC, "1min 30s");
        CHECK(parse_sec("", &u) < 0 && parse_sec("x", &u) < 0 && parse_sec("-1", &u) < 0, "bad spans");
        CHECK(parse_port("0", &p) < 0 && parse_port("65536", &p) < 0 && parse_port("22", &p) == 0 && p == 22, "ports");
        CHECK(split_host_port("[::1]:80", 1, &h, &p) == 0 && p == 80, "v6 host:port");
        CHECK_STR(h, "::1");
        free(h);
        CHECK(secret_equal("abc", 3, "abc", 3) && !secret_equal("abc", 3, "abd", 3) && !secret_equal("abc", 3, "ab", 2),
              "secret_equal");
        /* names a public CA issues for (ACMEDomain=) */
        CHECK(dns_name_is_valid("www.example.com") && dns_name_is_valid("a-b.x1.io") && dns_name_is_valid("1.example.com"),
              "DNS names");
        CHECK(!dns_name_is_valid("a..example.com") && !dns_name_is_valid("1.2.3.4") && !dns_name_is_valid("x.123") &&
              !dns_name_is_valid("a-.example.com") && !dns_name_is_valid("-a.example.com") &&
              !dns_name_is_valid("example") && !dns_name_is_valid("example.com.") && !dns_name_is_valid(".example.com") &&
              !dns_name_is_valid("") && !dns_name_is_valid("a_b.example.com"),
              "not DNS names");
        {
                char l64[80];
                memset(l64, 'a', 64);
                strcpy(l64 + 64, ".com");
                CHECK(!dns_name_is_valid(l64), "a 64-letter label");
                strcpy(l64 + 63, ".com");
                CHECK(dns_name_is_valid(l64 + 0), "a 63-letter label");
        }
}

static void test_acme_names_once(void) {
        /* a name written twice (in any case) is kept once */
        Definition *d = parse_ok("[Tunnel]\nRole=server\nMode=http\nToken=0123456789abcdef0123\n[Server]\n"
                                 "ACMEDomain=a.example.com A.Example.COM b.example.com\nACMEEmail=x@example.com\n");
        CHECK(d && d->n_acme_domains == 2, "ACMEDomain= twice the same name: 2 names, got %zu", d ? d->n_acme_domains : 0);
        definition_free(d);
        /* a bad word after a taken one: the words after it are freed too (ASan's leak check) */
        expect_error("[Tunnel]\nRole=server\nMode=http\nToken=0123456789abcdef0123\n[Server]\n"
                     "ACMEDomain=a.example.com *.b.example.com c.example.com\n",
                     "wildcard names need the DNS-01 challenge");
}

static void test_proxy_urls(void) {
        static const struct { const char *url, *user, *password, *host; uint16_t port; } good[] = {
                { "http://proxy.corp:3128", NULL, NULL, "proxy.corp", 3128 },
                { "HTTP://proxy.corp/", NULL, NULL, "proxy.corp", 1080 },
                { "proxy.corp:3128", NULL, NULL, "proxy.corp", 3128 },
                { "u:p@10.0.0.2", "u", "p", "10.0.0.2", 1080 },
                { "http://[fd00::2]", NULL, NULL, "fd00::2", 1080 },
                { "http://u@10.0.0.1:8080", "u", NULL, "10.0.0.1", 8080 },
                { "http://u:p%40ss%3Aw@[fd00::1]:3128", "u", "p@ss:w", "fd00::1", 3128 },
                { "http://dom%5Cuser:@h:1", "dom\\user", "", "h", 1 },
        };
        static const char *const bad[] = {
                "https://h:3128", "socks5://h:1080", "ftp://h", "http://", "http://h:0", "http://h:70000",
                "http://h:1/path", "http://:p@h:1", "http://u:p%0d%0a@h:1", "http://u%3a:p@h:1", "http://u:p%4@h:1",
                "http://h h:1", "http://h:1?x", "http://u:p@", "",
        };
        for (size_t i = 0; i < ELEMENTSOF(good); i++) {
                ProxyURL u = {};
                const char *reason = NULL;
                CHECK(proxy_url_parse(good[i].url, &u, &reason) == 0, "proxy %s: %s", good[i].url, reason ?: "");
                CHECK(streq_ptr(u.user, good[i].user) && streq_ptr(u.password, good[i].password) &&
                              streq_ptr(u.host, good[i].host) && u.port == good[i].port,
                      "proxy %s: %s %s %s %u", good[i].url, u.user ?: "-", u.password ?: "-", u.host ?: "-", u.port);
                proxy_url_done(&u);
        }
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                ProxyURL u = {};
                const char *reason = NULL;
                CHECK(proxy_url_parse(bad[i], &u, &reason) < 0 && reason, "proxy %s refused", bad[i]);
                CHECK(!u.host && !u.user, "nothing kept from %s", bad[i]);
        }
        /* no_proxy as curl reads it. */
        CHECK(no_proxy_matches("*", "x.example", 443) && no_proxy_matches(" * ", "x.example", 443), "*");
        CHECK(!no_proxy_matches("foo,*", "x.example", 443), "* only alone, as for curl");
        CHECK(no_proxy_matches("example.com", "tunnel.example.com.", 1) && no_proxy_matches("example.com.", "tunnel.example.com", 1),
              "trailing dots");
        CHECK(no_proxy_matches("example.com", "example.com", 443) && no_proxy_matches("example.com", "a.b.EXAMPLE.com", 1),
              "a name and the names under it");
        CHECK(no_proxy_matches(".example.com", "a.example.com", 1) && no_proxy_matches(".example.com", "example.com", 1),
              "a leading dot");
        CHECK(!no_proxy_matches("example.com", "badexample.com", 1) && !no_proxy_matches("a.example.com", "example.com", 1),
              "suffixes on label boundaries only");
        CHECK(no_proxy_matches("localhost, 10.0.0.0/8", "10.2.3.4", 1) && !no_proxy_matches("10.0.0.0/8", "11.0.0.1", 1),
              "prefixes");
        CHECK(no_proxy_matches("::1", "::1", 1) && no_proxy_matches("[::1]", "::1", 1) &&
                      no_proxy_matches("fd00::/8", "fd12::1", 1),
              "IPv6");
        CHECK(no_proxy_matches("h.example:8123", "h.example", 8123) && !no_proxy_matches("h.example:8123", "h.example", 443),
              "with a port");
        CHECK(!no_proxy_matches("", "h", 1) && !no_proxy_matches(NULL, "h", 1) && !no_proxy_matches(" , ,", "h", 1),
              "empty lists");
        CHECK(!no_proxy_matches("10.0.0.0/8", "ten.example", 1), "a prefix does not match a name");
}

static void test_forwards(void) {
        static const char *const bad_requests[] = {
                "", "1", "1 ", "0 h:1", "01 h:1", "2147483648 h:1", "x h:1", "1 h", "1 h:0", "1 h:1 x", "1 ::1:80",
                "1 [h]:1", "1 bad_host:1", "1  h:1", "-1 h:1", "1 [::1", "1 h:1\t", "99999999999 h:1", "1 :80",
                /* checked as one address, dialled as another name (the outside review's bypass) */
                "1 [127.0.0.2:1]:80", "1 *:80", "1 [:1]:80", "1 [10.0.0.1]:80", "1 [fe80::1%lo]:80",
        };
        static const char *const good_requests[] = { "1 db.internal:5432", "2147483647 10.0.0.1:22", "7 [fd00::1]:443" };
        Definition *d;
        uint32_t id;
        uint16_t port;
        char *host = NULL;

        for (size_t i = 0; i < ELEMENTSOF(bad_requests); i++)
                CHECK(forward_request_parse(bad_requests[i], &id, &host, &port) < 0, "forward '%s' refused",
                      bad_requests[i]);
        for (size_t i = 0; i < ELEMENTSOF(good_requests); i++) {
                CHECK(forward_request_parse(good_requests[i], &id, &host, &port) == 0, "forward '%s'", good_requests[i]);
                free(host);
                host = NULL;
        }
        CHECK(forward_request_parse("7 [fd00::1]:443", &id, &host, &port) == 0 && id == 7 && port == 443, "v6 forward");
        CHECK_STR(host, "fd00::1");
        free(host);

        d = parse_ok("[Tunnel]\nRole=server\nToken=0123456789abcdef\n[Server]\n"
                     "AllowForwardTo=db.internal:5432 10.1.0.0/16 192.0.2.7:22 [fd00::/64]:443 fd01::/16\n");
        if (d) {
                CHECK(d->n_allow_forward_to == 5, "five rules");
                CHECK(definition_forward_allowed(d, "db.internal", 5432) && definition_forward_allowed(d, "DB.Internal", 5432),
                      "a name, any case");
                CHECK(!definition_forward_allowed(d, "db.internal", 5433) && !definition_forward_allowed(d, "db2.internal", 5432),
                      "that name, that port only");
                CHECK(definition_forward_allowed(d, "10.1.2.3", 1) && !definition_forward_allowed(d, "10.2.0.1", 1),
                      "a prefix, any port");
                CHECK(definition_forward_allowed(d, "192.0.2.7", 22) && !definition_forward_allowed(d, "192.0.2.7", 23),
                      "an address and a port");
                CHECK(definition_forward_allowed(d, "fd00::9", 443) && !definition_forward_allowed(d, "fd00::9", 80) &&
                              definition_forward_allowed(d, "fd01::1", 80),
                      "IPv6 prefixes");
                CHECK(!definition_forward_allowed(d, "localhost", 5432), "a name never matches a prefix");
                CHECK(!definition_forward_allowed(d, "10.1.2.3:1", 5432) && !definition_forward_allowed(d, "*", 5432),
                      "only inet_pton() addresses match prefixes");
                definition_free(d);
        }
        d = parse_ok("[Tunnel]\nRole=server\nToken=0123456789abcdef\n[Server]\n");
        if (d) {
                CHECK(!definition_forward_allowed(d, "127.0.0.1", 22) && !definition_forward_allowed(d, "localhost", 22),
                      "nothing by default");
                definition_free(d);
        }
        d = parse_ok("[Tunnel]\nRole=client\nToken=0123456789abcdef\n[Client]\nURL=wss://h\nPorts=1\n"
                     "LocalForward=5432:db.internal:5432 0.0.0.0:2222:10.0.0.5:22 [::1]:8443:[fd00::7]:443\n");
        if (d) {
                char buf[SOCKADDR_STR_MAX];
                CHECK(d->n_local_forwards == 3, "three forwards");
                CHECK_STR(socket_address_format(&d->local_forwards[0].listen, buf), "127.0.0.1:5432");
                CHECK_STR(d->local_forwards[0].host, "db.internal");
                CHECK_STR(socket_address_format(&d->local_forwards[2].listen, buf), "[::1]:8443");
                CHECK_STR(d->local_forwards[2].host, "fd00::7");
                CHECK(d->local_forwards[2].port == 443, "port");
                definition_free(d);
        }
        expect_error("[Tunnel]\nRole=client\nToken=0123456789abcdef\n[Client]\nURL=wss://h\nPorts=1\n"
                     "LocalForward=5432:db.internal\n",
                     "expected [LISTEN:]PORT:HOST:PORT");
        expect_error("[Tunnel]\nRole=client\nToken=0123456789abcdef\n[Client]\nURL=wss://h\nPorts=1\n"
                     "LocalForward=host.name:5432:db:5432\n",
                     "must be numeric");
        expect_error("[Tunnel]\nRole=client\nToken=0123456789abcdef\n[Client]\nURL=wss://h\nPorts=1\n"
                     "LocalForward=1:a:1 1:b:2\n",
                     "the same listening address twice");
        expect_error("[Tunnel]\nRole=server\nToken=0123456789abcdef\n[Server]\nAllowForwardTo=db.internal\n",
                     "expected HOST:PORT, an address prefix");
        expect_error("[Tunnel]\nRole=server\nToken=0123456789abcdef\n[Server]\nAllowForwardTo=10.0.0.1/8:22\n",
                     "expected HOST:PORT, an address prefix");
}

static void test_http_rules(void) {
        static const char base[] = "[Tunnel]\nRole=client\nMode=http\nToken=0123456789abcdef\n[Client]\n"
                                   "URL=wss://h\nUpstream=app.test=http://127.0.0.1:1\nUpstream=http://127.0.0.1:2\n%s";
        static const struct { const char *keys, *error; } errors[] = {
                { "BasicAuthFile=relative/path\n", "t.conf:9: Invalid BasicAuthFile= value 'relative/path': expected "
                                                   "[HOST=]/ABSOLUTE/PATH" },
                { "BasicAuthFile=/a\nBasicAuthFile=/b\n", "t.conf:10: Invalid BasicAuthFile= value '/b': the default file" },
                { "BearerTokenFile=bad_host=/a\n", "HOST= is not a valid host name" },
                { "BasicAuthFile=other.test=/a\n",
                  "t.conf: an HTTP rule names host other.test, which no Upstream=other.test=URL serves" },
                { "RequestHeader=app.test=replace X-A b\n", "expected [HOST=]set|add|unset NAME [VALUE]" },
                { "RequestHeader=set Content-Length 5\n", "belongs to the message's framing or routing" },
                { "ResponseHeader=set Transfer-Encoding chunked\n", "belongs to the message's framing" },
                { "RequestHeader=set X(A) b\n", "expected a header name" },
                { "RequestHeader=unset X-A b\n", "unset takes a header name only" },
                { "RequestHeader=set Host evil\n", "belongs to the message's framing or routing" },
                { "RateLimit=10/week\n", "expected [HOST=]N/s|N/min|N/h [BURST]" },
                { "RateLimit=0/s\n", "expected [HOST=]N/s" },
                { "RateLimit=10/s 0\n", "expected [HOST=]N/s" },
                { "RateLimit=10/s\nRateLimit=5/s\n", "one per host" },
                { "BasicAuthFile=/nonexistent/users\n", "/nonexistent/users: No such file or directory" },
                { "BasicAuthFile=none\n", "none is for one host: HOST=none exempts it from the default file" },
                { "RateLimit=none\n", "none is for one host: HOST=none exempts it from the default limit" },
                { "BearerTokenFile=app.test=none\nBearerTokenFile=app.test=/a\n", "this host has a file of this kind" },
        };
        Definition *d = NULL;
        _cleanup_free_ char *err = NULL, *conf = NULL, *users = NULL, *gen = NULL;
        int r;

        for (size_t i = 0; i < ELEMENTSOF(errors); i++) {
                _cleanup_free_ char *c = NULL;
                if (asprintf(&c, base, errors[i].keys) < 0)
                        abort();
                expect_error(c, errors[i].error);
        }
        expect_error("[Tunnel]\nRole=client\nToken=0123456789abcdef\n[Client]\nURL=wss://h\nPorts=1\n"
                     "RateLimit=1/s\n", "are for Mode=http");

        users = write_file("users", "alice:$2y$05$CKUR9rZRum3eyFdyZkRnoumUIvCPvlNM2a5qThyV3srUUE3pxovYa\n");
        if (asprintf(&conf, base, "") < 0)
                abort();
        free(conf);
        if (asprintf(&conf,
                     "[Tunnel]\nRole=client\nMode=http\nToken=0123456789abcdef\n[Client]\nURL=wss://h\n"
                     "Upstream=App.Test.=http://127.0.0.1:1\nUpstream=http://127.0.0.1:2\n"
                     "BasicAuthFile=APP.test=%s\nRequestHeader=set X-A a=b c\nRequestHeader=app.test=unset X-B\n"
                     "ResponseHeader=add Cache-Control no-store\nRateLimit=app.test=600/min 20\nRateLimit=3/s\n",
                     users) < 0)
                abort();
        r = load(conf, &d, &err, NULL);
        CHECK(r == 0, "load: %s", err ?: "");
        if (r == 0) {
                const HttpRules *h = &d->http_rules;
                const RateRule *rate = http_rules_rate(h, "app.test");
                CHECK(h->n_basic == 1 && streq(h->basic[0].host, "app.test") && h->basic[0].htpasswd &&
                      htpasswd_users(h->basic[0].htpasswd) == 1, "BasicAuthFile= loaded for app.test");
                CHECK(http_rules_basic(h, NULL) == NULL, "no default file: other hosts open");
                CHECK(h->n_request_headers == 2 && !h->request_headers[0].host &&
                      h->request_headers[0].action == HEADER_SET && streq(h->request_headers[0].value, "a=b c"),
                      "RequestHeader=set X-A a=b c (a value with '=' and a space, no host)");
                CHECK(rate && rate->burst == 20 && rate->interval_usec == 100000, "600/min 20 on app.test");
                rate = http_rules_rate(h, NULL);
                CHECK(rate && rate->burst == 3 && rate->interval_usec == 333333, "3/s, burst 3, by default");
        }
        d = definition_free(d);
        /* Credentials per host as a group; HOST=none. */
        free(conf);
        if (asprintf(&conf,
                     "[Tunnel]\nRole=client\nMode=http\nToken=0123456789abcdef\n[Client]\nURL=wss://h\n"
                     "Upstream=a.test=http://127.0.0.1:1\nUpstream=b.test=http://127.0.0.1:1\n"
                     "Upstream=http://127.0.0.1:2\nBasicAuthFile=%s\nBearerTokenFile=a.test=none\n"
                     "BasicAuthFile=b.test=none\nRateLimit=5/s\nRateLimit=b.test=none\n",
                     users) < 0)
                abort();
        r = load(conf, &d, &err, NULL);
        CHECK(r == 0, "load: %s", err ?: "");
        if (r == 0) {
                const HttpRules *h = &d->http_rules;
                const CredentialFile *basic, *bearer;
                http_rules_credentials(h, "a.test", &basic, &bearer);
                CHECK(basic && !basic->host && !bearer,
                      "a.test: BearerTokenFile=a.test=none drops tokens only; the default htpasswd stays");
                http_rules_credentials(h, "b.test", &basic, &bearer);
                CHECK(!basic && !bearer, "b.test: BasicAuthFile=none");
                http_rules_credentials(h, "c.test", &basic, &bearer);
                CHECK(basic && !basic->host && !bearer, "other hosts: the default htpasswd");
                http_rules_credentials(h, NULL, &basic, &bearer);
                CHECK(basic && !basic->host, "the catch-all upstream: the default htpasswd");
                CHECK(!http_rules_rate(h, "b.test") && http_rules_rate(h, "a.test"), "RateLimit=b.test=none");
                CHECK(h->serial > 0, "loaded rules have a serial");
        }
        d = definition_free(d);
        /* The generator does not read credentials: a file it cannot read is no error there. */
        gen = write_file("g.conf", "[Tunnel]\nRole=client\nMode=http\n[Client]\nURL=wss://h\n"
                                   "Upstream=http://127.0.0.1:2\nBasicAuthFile=/nonexistent\n");
        r = definition_load_no_token(gen, NULL, &d, &err);
        CHECK(r == 0, "no-token load reads no credentials: %s", err ?: "");
        definition_free(d);
        printf("test-conf: BasicAuthFile=, BearerTokenFile=, RequestHeader=, ResponseHeader=, RateLimit=\n");
}

/* UDPPorts= (Ports= items), AllowUDPPorts= (ranges; none: no UDP), UDPIdleSec= (1 s to 1 h). */
static void test_udp(void) {
        Definition *d;

        d = parse_ok("[Tunnel]\nRole=client\nToken=0123456789abcdef\nUDPIdleSec=90\n[Client]\nURL=wss://h\n"
                     "Ports=1\nUDPPorts=53:5353 51820:10.0.0.2:51820 5000:[fd00::1]:6000\nAllowFrom=53=10.0.0.0/8\n");
        if (d) {
                CHECK(d->n_udp_ports == 3 && d->udp_ports[0].public_port == 53 && d->udp_ports[0].upstream_port == 5353 &&
                              !d->udp_ports[0].host && streq(d->udp_ports[1].host, "10.0.0.2") &&
                              streq(d->udp_ports[2].host, "fd00::1") && d->udp_ports[2].upstream_port == 6000,
                      "UDPPorts= items");
                CHECK(d->udp_idle_usec == 90 * USEC_PER_SEC, "UDPIdleSec=90");
                CHECK(streq(port_map_host(d, &d->udp_ports[0]), "127.0.0.1"), "a UDP port without a host: Upstream=");
                definition_free(d);
        }
        d = parse_ok("[Tunnel]\nRole=server\nToken=0123456789abcdef\n[Server]\nAllowUDPPorts=53 5000-5010\n");
        if (d) {
                CHECK(definition_udp_port_allowed(d, 53) && definition_udp_port_allowed(d, 5005) &&
                              !definition_udp_port_allowed(d, 54) && !definition_udp_port_allowed(d, 5011),
                      "AllowUDPPorts= ranges");
                CHECK(d->udp_idle_usec == 60 * USEC_PER_SEC, "UDPIdleSec= defaults to 60 s");
                definition_free(d);
        }
        d = parse_ok("[Tunnel]\nRole=server\nToken=0123456789abcdef\n");
        if (d) {
                CHECK(!definition_udp_port_allowed(d, 5000) && !definition_udp_port_allowed(d, 53),
                      "no AllowUDPPorts=: no UDP port at all");
                definition_free(d);
        }
        expect_error("[Tunnel]\nRole=client\nToken=0123456789abcdef\n[Client]\nURL=wss://h\nPorts=1\nUDPPorts=53 53:54\n",
                     "t.conf:7: Invalid UDPPorts= value '53 53:54': public port listed twice");
        expect_error("[Tunnel]\nRole=client\nToken=0123456789abcdef\n[Client]\nURL=wss://h\nPorts=1\nUDPPorts=0\n",
                     "Invalid UDPPorts= value '0'");
        expect_error("[Tunnel]\nRole=client\nMode=http\nToken=0123456789abcdef\n[Client]\nURL=wss://h\n"
                     "Upstream=http://127.0.0.1\nUDPPorts=53\n", "UDPPorts= needs Mode=tcp");
        expect_error("[Tunnel]\nRole=server\nToken=0123456789abcdef\n[Server]\nAllowUDPPorts=60-50\n",
                     "t.conf:5: Invalid AllowUDPPorts= value '60-50': expected PORT or LOW-HIGH");
        expect_error("[Tunnel]\nRole=server\nMode=http\nToken=0123456789abcdef\n[Server]\nAllowUDPPorts=53\n",
                     "AllowUDPPorts= needs Mode=tcp");
        expect_error("[Tunnel]\nRole=server\nToken=0123456789abcdef\nUDPIdleSec=0\n", "UDPIdleSec=");
        expect_error("[Tunnel]\nRole=server\nToken=0123456789abcdef\nUDPIdleSec=2h\n", "expected 1s to 1h");
        expect_error("[Tunnel]\nRole=server\nToken=0123456789abcdef\nUDPIdleSec=500ms\n", "expected 1s to 1h");
}

int main(void) {
        if (!mkdtemp(dir))
                return EXIT_FAILURE;
        test_server_keys();
        test_client_keys();
        test_proxy_protocol();
        test_lists_and_quotes();
        test_access_keys();
        test_http_rules();
        test_warnings();
        test_errors();
        test_acme_names_once();
        test_udp();
        test_forwards(); /* before test_files(): its drop-in directory stays */
        test_files();
        test_parsers();
        test_proxy_urls();
        {
                char cmd[64];
                snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
                (void) system(cmd);
        }
        return tests_finish("test-conf");
}
