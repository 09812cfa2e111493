// SPDX-License-Identifier: LGPL-2.1-or-later
/* Unit tests for inlets-args.c: inlets PRO command lines turned into definitions, what they
 * refuse and how they say it, and definitions written back as files. */

#include <stdio.h>

#include "inlets-args.h"
#include "log.h"
#include "macro.h"
#include "socket-util.h"
#include "tests.h"

/* Splits line on spaces into argv and parses it; *ret_error holds the message on failure. */
static int parse(const char *line, Definition **ret, InletsArgs *ret_args, char **ret_error) {
        _cleanup_free_ char *copy = strdup(line);
        char *argv[64];
        int argc = 0;

        if (!copy)
                abort();
        for (char *w = strtok(copy, " "); w && argc < 63; w = strtok(NULL, " "))
                argv[argc++] = w;
        argv[argc] = NULL;
        *ret = NULL;
        *ret_args = (InletsArgs) {};
        *ret_error = NULL;
        return inlets_args_parse(argc, argv, "t", ret, ret_args, ret_error);
}

static void expect_refused(const char *line, const char *message) {
        _cleanup_(definition_freep) Definition *d = NULL;
        _cleanup_free_ char *err = NULL;
        InletsArgs a;
        int r = parse(line, &d, &a, &err);
        CHECK(r < 0, "expected '%s' to be refused", line);
        CHECK(!d, "'%s': no definition on failure", line);
        if (message)
                CHECK_STR(err, message);
}

static void test_tcp_server(void) {
        _cleanup_(definition_freep) Definition *d = NULL;
        _cleanup_free_ char *err = NULL;
        char buf[SOCKADDR_STR_MAX];
        InletsArgs a;
        int r = parse("tcp server --auto-tls-san 1.2.3.4 --auto-tls-san=h.example.com --token-file /run/t "
                      "--control-port 9000 --data-addr 127.0.0.1 --allow-ports 22,3000-3010", &d, &a, &err);
        CHECK(r == 0, "tcp server: %s", err ?: "");
        if (r < 0)
                return;
        CHECK(d->role == ROLE_SERVER && d->mode == MODE_TCP, "role/mode");
        CHECK(d->n_auto_tls_san == 2, "two SANs, got %zu", d->n_auto_tls_san);
        CHECK_STR(d->auto_tls_san[1], "h.example.com");
        CHECK_STR(socket_address_format(&d->control_listen, buf), "0.0.0.0:9000");
        CHECK_STR(d->token_file, "/run/t");
        CHECK_STR(a.token_file, "/run/t");
        CHECK(!a.token_inline && a.generate == GENERATE_NONE, "no --token, no --generate");
        CHECK(d->n_allow_ports == 4 && d->allow_ports[2] == 3000 && d->allow_ports[3] == 3010,
              "--allow-ports");
        inlets_args_done(&a);
        CHECK(!a.token_file, "inlets_args_done() resets");
        printf("inlets-args: tcp server flags become [Server] keys\n");
}

static void test_http_server(void) {
        _cleanup_(definition_freep) Definition *d = NULL;
        _cleanup_free_ char *err = NULL;
        char buf[SOCKADDR_STR_MAX];
        InletsArgs a;
        int r = parse("http server --port 8080 --control-addr ::1 --letsencrypt-domain www.example.com "
                      "--letsencrypt-email a@example.com --letsencrypt-issuer prod --token 0123456789abcdef0123 "
                      "--generate=systemd --auto-tls=false --tls-cert /c --tls-key /k", &d, &a, &err);
        CHECK(r == 0, "http server: %s", err ?: "");
        if (r < 0)
                return;
        CHECK(d->mode == MODE_HTTP, "mode http");
        CHECK_STR(socket_address_format(&d->http_listen, buf), "0.0.0.0:8080");
        CHECK_STR(socket_address_format(&d->control_listen, buf), "[::1]:8123");
        CHECK_STR(d->acme_directory, ACME_DIRECTORY_PRODUCTION);
        CHECK_STR(d->acme_email, "a@example.com");
        CHECK(d->n_acme_domains == 1, "one ACME domain");
        CHECK_STR(d->token, "0123456789abcdef0123");
        CHECK(a.token_inline && a.generate == GENERATE_SYSTEMD, "--token and --generate=systemd noted");
        CHECK(d->auto_tls == 0, "--auto-tls=false");
        CHECK_STR(d->certificate_file, "/c");
        CHECK_STR(d->key_file, "/k");
        inlets_args_done(&a);
        printf("inlets-args: http server, Let's Encrypt flags, --control-addr with IPv6\n");
}

static void test_clients(void) {
        _cleanup_(definition_freep) Definition *d = NULL, *h = NULL;
        _cleanup_free_ char *err = NULL, *ini = NULL;
        InletsArgs a;
        int r = parse("tcp client --url wss://203.0.113.1:8123 --upstream 10.0.0.2 --ports 3389,2222:22,2022:git.lan:22,"
                      "8443:[fd00::7]:443 "
                      "--fingerprint sha256:578d653986edb822ebe4d45296e69bf8d0ebc9df201d70b7e541ca8d7ed91dbb "
                      "--client-id office --generate config", &d, &a, &err);
        CHECK(r == 0, "tcp client: %s", err ?: "");
        if (r < 0)
                return;
        CHECK(d->role == ROLE_CLIENT && d->n_ports == 4, "role and four ports");
        CHECK(d->ports[1].public_port == 2222 && d->ports[1].upstream_port == 22, "2222:22");
        CHECK(d->has_fingerprint && d->server_fingerprint[0] == 0x57, "--fingerprint");
        CHECK(a.generate == GENERATE_CONFIG, "--generate config");
        CHECK(definition_finish_no_token(d, &err) == 0, "finish: %s", err ?: "");
        ini = definition_to_ini(d, "/etc/inlets.d/t.token");
        CHECK_CONTAINS(ini, "[Client]\nURL=wss://203.0.113.1:8123\nServerFingerprint=sha256:578d6539");
        CHECK_CONTAINS(ini, "Upstream=10.0.0.2\nPorts=3389 2222:22 2022:git.lan:22 8443:[fd00::7]:443\nClientID=office\n");
        CHECK_CONTAINS(ini, "TokenFile=/etc/inlets.d/t.token\n");
        inlets_args_done(&a);

        r = parse("http client --url wss://h.example.com --upstream a.example.com=http://127.0.0.1:3000 "
                  "--upstream http://127.0.0.1:4000 --tls-ca /ca.pem", &h, &a, &err);
        CHECK(r == 0, "http client: %s", err ?: "");
        if (r == 0) {
                CHECK(h->mode == MODE_HTTP && h->n_upstreams == 2, "two upstreams");
                CHECK_STR(h->ca_file, "/ca.pem");
        }
        inlets_args_done(&a);
        {
                _cleanup_(definition_freep) Definition *pp = NULL;
                _cleanup_free_ char *e = NULL, *text = NULL;

                r = parse("tcp client --url wss://h --ports 25 --proxy-protocol v2", &pp, &a, &e);
                CHECK(r == 0, "--proxy-protocol v2: %s", e ?: "");
                if (r == 0) {
                        CHECK(pp->proxy_protocol == PROXY_PROTOCOL_V2, "ProxyProtocol=v2");
                        CHECK(definition_finish_no_token(pp, &e) == 0, "finish: %s", e ?: "");
                        text = definition_to_ini(pp, NULL);
                        CHECK_CONTAINS(text, "Ports=25\nProxyProtocol=v2\n");
                }
                inlets_args_done(&a);
        }
        printf("inlets-args: tcp and http clients, written back as a file; --proxy-protocol\n");
}

static void test_fileserver(void) {
        _cleanup_(definition_freep) Definition *d = NULL, *e = NULL;
        _cleanup_free_ char *err = NULL, *ini = NULL;
        char buf[SOCKADDR_STR_MAX];
        InletsArgs a;
        int r = parse("http fileserver --webroot /srv --allow-browsing --basic-auth=false", &d, &a, &err);
        CHECK(r == 0, "fileserver: %s", err ?: "");
        if (r < 0)
                return;
        CHECK_STR(socket_address_format(&d->listen, buf), "127.0.0.1:8080");
        CHECK(d->allow_browsing == 1 && d->basic_auth == 0, "--allow-browsing, --basic-auth=false");
        CHECK(definition_finish(d, &err) == 0, "an open fileserver needs no token: %s", err ?: "");
        ini = definition_to_ini(d, NULL);
        CHECK_STR(ini, "# inletsd definition t\n[Tunnel]\nRole=fileserver\n"
                       "# The token: NAME.token beside this file, or LoadCredential=token:… under systemd.\n"
                       "\n[FileServer]\nListen=127.0.0.1:8080\nWebroot=/srv\nAllowBrowsing=yes\nBasicAuth=no\n");
        inlets_args_done(&a);

        r = parse("http fileserver --webroot /srv --port 9999", &e, &a, &err);
        CHECK(r == 0 && e, "fileserver --port: %s", err ?: "");
        if (e)
                CHECK_STR(socket_address_format(&e->listen, buf), "127.0.0.1:9999");
        inlets_args_done(&a);

        /* inlets 0.9's "fileserver" alone: the same definition. */
        {
                _cleanup_(definition_freep) Definition *f = NULL;
                _cleanup_free_ char *ini2 = NULL;
                r = parse("fileserver --webroot /srv --allow-browsing --basic-auth=false", &f, &a, &err);
                CHECK(r == 0 && f, "fileserver alone: %s", err ?: "");
                if (f) {
                        CHECK(definition_finish(f, &err) == 0, "%s", err ?: "");
                        ini2 = definition_to_ini(f, NULL);
                        CHECK_STR(ini2, ini);
                }
                inlets_args_done(&a);
        }
        expect_refused("fileserver server --webroot /srv", "unexpected argument 'server'");
        printf("inlets-args: http fileserver, and fileserver alone\n");
}

static void test_allow_ips(void) {
        static const char scoped[] = "[Tunnel]\nRole=server\nMode=tcp\n[Server]\nTLS=no\nAllowFrom=any\n"
                                     "DenyFrom=3389=192.0.2.0/24\nControlAllowFrom=127.0.0.1 ::1\n";
        _cleanup_(definition_freep) Definition *d = NULL, *back = NULL, *c = NULL;
        _cleanup_free_ char *err = NULL, *ini = NULL;
        SocketAddress peer;
        InletsArgs a;
        int r = parse("http server --allow-ips 10.0.0.0/8,192.168.1.1 --token-file /run/t "
                      "--allow-ips=2001:db8::/32", &d, &a, &err);

        CHECK(r == 0, "--allow-ips: %s", err ?: "");
        if (r < 0)
                return;
        CHECK(d->access.n_rules == 3, "three rules, got %zu", d->access.n_rules);
        (void) socket_address_parse("10.9.8.7", 1, &peer);
        CHECK(access_list_allows(&d->access, NULL, &peer), "10.9.8.7 in --allow-ips");
        (void) socket_address_parse("11.9.8.7", 1, &peer);
        CHECK(!access_list_allows(&d->access, NULL, &peer), "11.9.8.7 not in --allow-ips");
        CHECK(definition_finish_no_token(d, &err) == 0, "finish: %s", err ?: "");
        ini = definition_to_ini(d, "/run/t");
        CHECK_CONTAINS(ini, "\nAllowFrom=192.168.1.1/32 10.0.0.0/8 2001:db8::/32\n");
        CHECK(!strstr(ini ?: "", "DenyFrom=") && !strstr(ini ?: "", "ControlAllowFrom="),
              "no empty lists written: %s", ini);
        /* What --generate=config writes reads back to the same rules. */
        back = definition_new("t", NULL);
        CHECK(back && definition_parse_buffer(back, "gen.conf", ini, strlen(ini), &err) == 0, "read back: %s",
              err ?: "");
        CHECK(back && back->access.n_rules == 3 &&
                      memcmp(back->access.rules[1].prefix.addr, d->access.rules[1].prefix.addr, 16) == 0,
              "the rules read back");
        inlets_args_done(&a);

        /* Scoped and deny rules and the control port's list are written too. */
        c = definition_new("t", NULL);
        CHECK(c && definition_parse_buffer(c, "c.conf", scoped, strlen(scoped), &err) == 0, "scoped: %s",
              err ?: "");
        if (c && definition_finish_no_token(c, &err) == 0) {
                free(ini);
                ini = definition_to_ini(c, NULL);
                CHECK_CONTAINS(ini, "\nAllowFrom=0.0.0.0/0 ::/0\nDenyFrom=3389=192.0.2.0/24\n"
                                    "ControlAllowFrom=127.0.0.1/32 ::1/128\n");
        }

        expect_refused("tcp server --allow-ips 10.1.2.3/8",
                       "--allow-ips: Invalid AllowFrom= value '10.1.2.3/8': address has bits set "
                       "past the prefix length (write the network address, e.g. 10.0.0.0/8)");
        expect_refused("tcp server --allow-ips 10.0.0.0/8,example.com",
                       "--allow-ips: Invalid AllowFrom= value '10.0.0.0/8,example.com': 'example.com': expected a "
                       "numeric IP address or prefix such as 192.0.2.0/24 or 2001:db8::/32 (no host names)");
        /* --lb-proxy-protocol: inlets' switch trusts any source; ours may name the balancers. */
        definition_free(TAKE_PTR(d));
        free(TAKE_PTR(ini));
        r = parse("tcp server --lb-proxy-protocol --token-file /run/t", &d, &a, &err);
        CHECK(r == 0 && d->accept_proxy.n_rules == 2, "--lb-proxy-protocol: %s", err ?: "");
        inlets_args_done(&a);
        definition_free(TAKE_PTR(d));
        r = parse("http server --lb-proxy-protocol=10.0.0.5,10.0.1.0/24 --token-file /run/t", &d, &a, &err);
        CHECK(r == 0 && d->accept_proxy.n_rules == 2, "--lb-proxy-protocol=LIST: %s", err ?: "");
        if (r == 0 && definition_finish_no_token(d, &err) == 0) {
                ini = definition_to_ini(d, "/run/t");
                CHECK_CONTAINS(ini, "\nAcceptProxyProtocol=10.0.0.5/32 10.0.1.0/24\n");
        }
        inlets_args_done(&a);
        expect_refused("tcp client --url wss://h --ports 1 --lb-proxy-protocol",
                       "--lb-proxy-protocol is for tcp server and http server");
        expect_refused("tcp server --lb-proxy-protocol=lb.example.com",
                       "--lb-proxy-protocol: Invalid AcceptProxyProtocol= value 'lb.example.com': expected a "
                       "numeric IP address or prefix such as 192.0.2.0/24 or 2001:db8::/32 (no host names)");
        printf("inlets-args: --allow-ips becomes AllowFrom= and is written back; --lb-proxy-protocol\n");
}

static void test_forward_flags(void) {
        _cleanup_(definition_freep) Definition *d = NULL, *k = NULL;
        _cleanup_free_ char *err = NULL, *ini = NULL, *ini2 = NULL;
        static const char keys[] = "[Tunnel]\nRole=client\nMode=tcp\n[Client]\nURL=wss://h:8123\nPorts=1\n"
                                   "LocalForward=5432:db.internal:5432 [::1]:8443:[fd00::7]:443\n";
        InletsArgs a;
        int r = parse("tcp client --url wss://h:8123 --ports 1 --token-file /run/t "
                      "--local-forward 5432:db.internal:5432,[::1]:8443:[fd00::7]:443", &d, &a, &err);

        CHECK(r == 0 && d->n_local_forwards == 2, "--local-forward: %s", err ?: "");
        if (r == 0 && definition_finish_no_token(d, &err) == 0) {
                ini = definition_to_ini(d, NULL);
                CHECK_CONTAINS(ini, "\nLocalForward=127.0.0.1:5432:db.internal:5432 [::1]:8443:[fd00::7]:443\n");
                /* The same as the keys. */
                k = definition_new("t", NULL);
                CHECK(k && definition_parse_buffer(k, "k.conf", keys, strlen(keys), &err) == 0 &&
                              definition_finish_no_token(k, &err) == 0,
                      "keys: %s", err ?: "");
                ini2 = k ? definition_to_ini(k, NULL) : NULL;
                CHECK_STR(ini2, ini);
        }
        inlets_args_done(&a);
        definition_free(TAKE_PTR(d));
        free(TAKE_PTR(ini));
        r = parse("tcp server --token-file /run/t --allow-forward-to db.internal:5432,10.0.0.0/8,[fd00::/64]:443",
                  &d, &a, &err);
        CHECK(r == 0 && d->n_allow_forward_to == 3, "--allow-forward-to: %s", err ?: "");
        if (r == 0 && definition_finish_no_token(d, &err) == 0) {
                ini = definition_to_ini(d, "/run/t");
                CHECK_CONTAINS(ini, "\nAllowForwardTo=db.internal:5432 10.0.0.0/8 [fd00::/64]:443\n");
        }
        inlets_args_done(&a);
        expect_refused("tcp client --url wss://h --ports 1 --local-forward 5432:db",
                       "--local-forward: Invalid LocalForward= value '5432:db': expected [LISTEN:]PORT:HOST:PORT "
                       "(IPv6 in brackets), e.g. 5432:db.internal:5432");
        printf("inlets-args: --local-forward and --allow-forward-to become LocalForward= and AllowForwardTo=\n");
}

/* The same definition from flags and from keys: their files must be equal. */
static void expect_same(const char *cmdline, const char *keys) {
        _cleanup_(definition_freep) Definition *d = NULL, *k = NULL;
        _cleanup_free_ char *err = NULL, *a_ini = NULL, *k_ini = NULL;
        InletsArgs a;
        int r = parse(cmdline, &d, &a, &err);

        CHECK(r == 0, "%s: %s", cmdline, err ?: "");
        if (r < 0)
                return;
        CHECK(definition_finish_no_token(d, &err) == 0, "%s: %s", cmdline, err ?: "");
        k = definition_new("t", NULL);
        CHECK(k && definition_parse_buffer(k, "k.conf", keys, strlen(keys), &err) == 0 &&
                      definition_finish_no_token(k, &err) == 0,
              "keys for %s: %s", cmdline, err ?: "");
        a_ini = definition_to_ini(d, "/run/t");
        k_ini = k ? definition_to_ini(k, "/run/t") : NULL;
        CHECK_STR(a_ini, k_ini);
        inlets_args_done(&a);
}

static void test_more_inlets_flags(void) {
        static const char tcp[] = "[Tunnel]\nRole=client\nMode=tcp\n[Client]\nURL=wss://h:8123\n";
        char keys[512];
        _cleanup_(definition_freep) Definition *d = NULL;
        _cleanup_free_ char *err = NULL, *yaml = NULL;
        InletsArgs a;
        int r;

        /* -p and a repeated --port on the client are --ports (inlets PRO's cli-reference). */
        snprintf(keys, sizeof(keys), "%sUpstream=127.0.0.1\nPorts=80 443\n", tcp);
        expect_same("tcp client --url wss://h:8123 -p 80 --port 443 --token-file /run/t", keys);
        expect_same("tcp client --url wss://h:8123 --ports 80,443 --token-file /run/t", keys);
        /* --upstream HOST:PORT with one port; uplink-style PUBLIC=HOST:PORT items. */
        snprintf(keys, sizeof(keys), "%sPorts=80:web.internal:8080\n", tcp);
        expect_same("tcp client --url wss://h:8123 --ports 80 --upstream web.internal:8080 --token-file /run/t", keys);
        snprintf(keys, sizeof(keys), "%sUpstream=10.0.0.2\nPorts=3389 2222:git.internal:22 8443:[fd00::7]:443\n", tcp);
        expect_same("tcp client --url wss://h:8123 --upstream 10.0.0.2 --ports 3389 "
                    "--upstream 2222=git.internal:22,8443=[fd00::7]:443 --token-file /run/t", keys);
        expect_refused("tcp client --url wss://h --ports 80,443 --upstream web:8080",
                       "--upstream web:8080: a port in --upstream needs exactly one --ports item; for several, give "
                       "PUBLIC=HOST:PORT items (--upstream 2222=git.internal:22,8080=web:80)");
        /* inlets PRO's licence flags: accepted, nothing read. */
        snprintf(keys, sizeof(keys), "%sUpstream=127.0.0.1\nPorts=80\n", tcp);
        expect_same("tcp client --url wss://h:8123 --ports 80 --license-file /nonexistent --license=JWT "
                    "--license-env LIC --token-file /run/t", keys);
        /* --generate=k8s_yaml: a ConfigMap with the definition, a Deployment, the token from a Secret. */
        r = parse("tcp client --url wss://h:8123 --ports 80 --upstream web --token-file /run/t --generate=k8s_yaml "
                  "--image registry.example/inletsd:1", &d, &a, &err);
        CHECK(r == 0 && a.generate == GENERATE_K8S_YAML, "--generate=k8s_yaml: %s", err ?: "");
        if (r == 0 && definition_finish_no_token(d, &err) == 0) {
                yaml = definition_to_k8s_yaml(d, a.image);
                CHECK_CONTAINS(yaml, "kind: ConfigMap\nmetadata:\n  name: t\ndata:\n  t.conf: |\n    # inletsd definition t\n");
                CHECK_CONTAINS(yaml, "    TokenFile=/var/run/secrets/inlets/token\n");
                CHECK_CONTAINS(yaml, "    Ports=80\n");
                CHECK_CONTAINS(yaml, "kind: Deployment\n");
                CHECK_CONTAINS(yaml, "        image: registry.example/inletsd:1\n");
                CHECK_CONTAINS(yaml, "        args: [\"--no-bus\", \"--config\", \"/etc/inlets.d/t.conf\"]\n");
                CHECK_CONTAINS(yaml, "          secretName: t-token\n");
                CHECK(!strstr(yaml, "--token"), "no token flag in the YAML");
        }
        inlets_args_done(&a);
        expect_refused("tcp server --generate=k8s_yaml --token-file /run/t",
                       "--generate=k8s_yaml is for tcp client and http client");
        printf("inlets-args: -p, --port on clients, --upstream HOST:PORT and PUBLIC=HOST:PORT, --license*, "
               "--generate=k8s_yaml\n");
}

static void test_refusals(void) {
        expect_refused("", "expected tcp|http server|client|fileserver");
        expect_refused("tcp", "expected tcp|http server|client|fileserver");
        expect_refused("udp server", "expected tcp|http server|client|fileserver");
        expect_refused("tcp fileserver", "unknown command 'tcp fileserver'");
        expect_refused("http proxy", "unknown command 'http proxy'");
        expect_refused("tcp server --nope", "unknown or incomplete option '--nope'");
        expect_refused("tcp client --url", "unknown or incomplete option '--url'");
        expect_refused("tcp server stray", "unexpected argument 'stray'");
        expect_refused("tcp server --control-port 0", "--control-port: expected a port, got '0'");
        expect_refused("http server --port http", "--port: expected a port, got 'http'");
        expect_refused("tcp server --generate yaml", "--generate: expected config, systemd or k8s_yaml, got 'yaml'");
        expect_refused("tcp client --url ftp://x",
                       "--url: Invalid URL= value 'ftp://x': expected wss://HOST[:PORT][/PATH] (or ws:// behind a "
                       "TLS proxy)");
        expect_refused("tcp client --ports 0", NULL);
        expect_refused("tcp server --auto-tls=maybe", NULL);
        expect_refused("tcp server --token short-but-has\nbreak",
                       "--token: a value cannot contain a line break");
        expect_refused("http server --letsencrypt-domain *.example.com", NULL);
        expect_refused("tcp client --url wss://h --ports 25 --proxy-protocol v3",
                       "--proxy-protocol: expected v1 or v2, got 'v3'");
        expect_refused("tcp server --proxy-protocol v1", "--proxy-protocol is for tcp client and http client");
        printf("inlets-args: refusals say what was wrong\n");
}

static void test_token_sources(void) {
        _cleanup_(definition_freep) Definition *d = NULL, *e = NULL;
        _cleanup_free_ char *err = NULL;
        InletsArgs a;
        int r;

        CHECK(setenv("INLETS_TEST_TOKEN", "env-token-0123456789abcdef", 1) == 0, "setenv");
        r = parse("tcp client --url wss://h:8123 --upstream 127.0.0.1 --ports 22 --token-env INLETS_TEST_TOKEN", &d, &a,
                  &err);
        CHECK(r == 0 && d, "--token-env: %s", err ?: "");
        if (d) {
                CHECK_STR(d->token, "env-token-0123456789abcdef");
                CHECK_STR(a.token_env, "INLETS_TEST_TOKEN");
                CHECK(!a.token_inline, "not the visible --token");
                CHECK(definition_finish(d, &err) == 0, "the environment's token checks: %s", err ?: "");
        }
        inlets_args_done(&a);
        (void) unsetenv("INLETS_TEST_TOKEN");
        expect_refused("tcp client --url wss://h --upstream h --ports 22 --token-env INLETS_TEST_TOKEN",
                       "--token-env: the environment variable 'INLETS_TEST_TOKEN' is not set");
        r = parse("tcp client --url wss://h:8123 --upstream 127.0.0.1 --ports 22 --token-from /run/t", &e, &a, &err);
        CHECK(r == 0 && e, "--token-from: %s", err ?: "");
        if (e) {
                CHECK_STR(e->token_file, "/run/t");
                CHECK_STR(a.token_file, "/run/t");
        }
        inlets_args_done(&a);
        printf("inlets-args: --token-env, --token-from\n");
}

static void test_is_mode(void) {
        CHECK(inlets_args_is_mode("tcp") && inlets_args_is_mode("http"), "tcp and http are modes");
        CHECK(inlets_args_is_mode("fileserver"), "fileserver alone is one (inlets 0.9)");
        CHECK(!inlets_args_is_mode("server") && !inlets_args_is_mode(NULL), "others are not");
        printf("inlets-args: inlets_args_is_mode()\n");
}

static void test_http_client_auth(void) {
        _cleanup_(definition_freep) Definition *d = NULL;
        _cleanup_free_ char *err = NULL, *ini = NULL;
        const CredentialFile *f;
        InletsArgs a;
        int r;

        r = parse("http client --url wss://h --upstream http://127.0.0.1:3000 --basic-auth-username bob "
                  "--basic-auth-password s3cret --bearer-token 0123456789abcdef0123", &d, &a, &err);
        CHECK(r == 0, "auth flags: %s", err ?: "");
        if (r < 0)
                return;
        CHECK(a.inline_secret && streq(a.inline_secret, "bearer-token"), "the secret flag is named");
        f = http_rules_basic(&d->http_rules, NULL);
        CHECK(f && !f->path && f->htpasswd && htpasswd_verify(f->htpasswd, "bob", 3, "s3cret", 6) == 1 &&
              htpasswd_verify(f->htpasswd, "bob", 3, "s3cre", 5) == 0, "bob's password, hashed in memory");
        f = http_rules_bearer(&d->http_rules, NULL);
        CHECK(f && f->tokens && bearer_tokens_match(f->tokens, "0123456789abcdef0123", 20), "the bearer token");
        CHECK(definition_finish(d, &err) == 0 || strstr(err ?: "", "token"), "finish: %s", err ?: "");
        inlets_args_done(&a);
        d = definition_free(d);
        err = mfree(err);

        r = parse("http client --url wss://h --upstream a.test=http://127.0.0.1:3000 --basic-auth-password pw",
                  &d, &a, &err);
        CHECK(r == 0 && d && htpasswd_verify(http_rules_basic(&d->http_rules, NULL)->htpasswd, "admin", 5, "pw", 2) == 1,
              "the user defaults to admin, as in inlets");
        inlets_args_done(&a);
        d = definition_free(d);

        r = parse("http client --url wss://h --upstream http://127.0.0.1:3000 --basic-auth-file /etc/inlets.d/users "
                  "--bearer-token-file /etc/inlets.d/tokens", &d, &a, &err);
        CHECK(r == 0 && !a.inline_secret, "file flags: %s", err ?: "");
        if (r == 0 && definition_finish_no_token(d, &err) == 0) {
                ini = definition_to_ini(d, "/run/t");
                CHECK_CONTAINS(ini, "\nBasicAuthFile=/etc/inlets.d/users\nBearerTokenFile=/etc/inlets.d/tokens\n");
        }
        inlets_args_done(&a);

        expect_refused("tcp client --url wss://h --ports 1 --basic-auth-password x",
                       "--basic-auth-password is for http client");
        expect_refused("http client --url wss://h --upstream http://h --basic-auth-username bob",
                       "--basic-auth-username needs --basic-auth-password");
        expect_refused("http client --url wss://h --upstream http://h --bearer-token short",
                       "--bearer-token:1: a token must be 16 to 2048 bytes long");
        expect_refused("http client --url wss://h --upstream http://h --basic-auth-file /a --basic-auth-password x",
                       "--basic-auth-password: --basic-auth-file is given too");
        expect_refused("http client --url wss://h --upstream http://h --basic-auth-username a:b --basic-auth-password x",
                       "--basic-auth-username/--basic-auth-password: a user name without ':' and a password of at "
                       "most 128 bytes");
        printf("inlets-args: http client --basic-auth-username/-password, --bearer-token, the file flags\n");
}

/* --udp-ports and --allow-udp-ports: UDPPorts= and AllowUDPPorts=, written back by --generate. */
static void test_udp_flags(void) {
        _cleanup_(definition_freep) Definition *d = NULL;
        _cleanup_free_ char *err = NULL, *ini = NULL;
        InletsArgs a;
        int r;

        expect_same("tcp client --url wss://h:8123 --ports 22 --udp-ports 53:5353,51820:10.0.0.2:51820,5000:[fd00::1]:6000 "
                    "--token-file /run/t",
                    "[Tunnel]\nRole=client\nMode=tcp\n[Client]\nURL=wss://h:8123\nPorts=22\n"
                    "UDPPorts=53:5353 51820:10.0.0.2:51820 5000:[fd00::1]:6000\n");
        expect_same("tcp server --token-file /run/t --allow-udp-ports 53,6000-6010",
                    "[Tunnel]\nRole=server\n[Server]\nAllowUDPPorts=53 6000-6010\n");
        r = parse("tcp client --url wss://h:8123 --ports 22 --udp-ports 53:5353 --token-file /run/t", &d, &a, &err);
        CHECK(r == 0 && definition_finish_no_token(d, &err) == 0, "--udp-ports: %s", err ?: "");
        ini = r == 0 ? definition_to_ini(d, "/run/t") : NULL;
        CHECK_CONTAINS(ini, "\nUDPPorts=53:5353\n");
        inlets_args_done(&a);
        expect_refused("tcp client --url wss://h --ports 1 --udp-ports 0", "--udp-ports: Invalid UDPPorts= value '0': expected PORT, PUBLIC:UPSTREAM or PUBLIC:HOST:UPSTREAM, "
                       "ports 1-65535");
        printf("inlets-args: --udp-ports and --allow-udp-ports become UDPPorts= and AllowUDPPorts=\n");
}

int main(void) {
        log_max_level = LOG_ERR;
        test_tcp_server();
        test_http_server();
        test_clients();
        test_fileserver();
        test_allow_ips();
        test_http_client_auth();
        test_forward_flags();
        test_udp_flags();
        test_more_inlets_flags();
        test_refusals();
        test_is_mode();
        test_token_sources();
        return tests_finish("test-inlets-args");
}
