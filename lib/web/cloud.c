// SPDX-License-Identifier: LGPL-2.1-or-later
/* Exit server plans and their cloud-init user-data; see cloud.h. */

#include <assert.h>
#include <stdio.h>
#include <sys/stat.h>

#include "autotls.h"
#include "cloud.h"
#include "conf.h"
#include "crypto-util.h"
#include "macro.h"
#include "string-util.h"

/* Nothing on the host can renew the certificate (it has no CA key), and the client pins the
 * certificate itself: it lasts as long as an auto-TLS CA, and a host is replaced, not renewed. */
#define EXIT_SERVER_CERT_DAYS AUTOTLS_CA_DAYS

ExitServerPlan *exit_server_plan_free(ExitServerPlan *p) {
        if (!p)
                return NULL;
        free(p->name);
        free(p->ports);
        free(p->package_url);
        erase_and_free(p->token);
        free(p->server_crt);
        erase_and_free(p->server_key);
        free(p->ca_crt);
        free(p->fingerprint);
        strv_free(p->acme_domains);
        free(p->acme_email);
        free(p->acme_directory);
        free(p);
        return NULL;
}

/* A CA made here signs the host's certificate and is dropped unsaved: the CA key never leaves
 * this process, so user-data read back from a metadata service cannot mint certificates. */
static int issue(ExitServerPlan *p, const char *host) {
        _cleanup_(x509_crt_freep) gnutls_x509_crt_t ca = NULL, crt = NULL;
        _cleanup_(x509_key_freep) gnutls_x509_privkey_t ca_key = NULL, key = NULL;
        _cleanup_free_ char *leaf = NULL;
        char *const sans[] = { (char *) host };
        int r;

        r = x509_new_ca(&ca, &ca_key);
        if (r < 0)
                return r;
        r = x509_issue_server(ca, ca_key, sans, host ? 1 : 0, EXIT_SERVER_CERT_DAYS, &crt, &key);
        if (r < 0)
                return r;
        r = x509_export_pem(crt, NULL, &leaf);
        if (r >= 0)
                r = x509_export_pem(ca, NULL, &p->ca_crt);
        if (r >= 0)
                r = x509_export_pem(NULL, key, &p->server_key);
        if (r >= 0)
                r = x509_fingerprint(crt, &p->fingerprint);
        if (r < 0)
                return r;
        /* The chain, so that a client trusting the CA (CAFile=) can verify the host too. */
        if (asprintf(&p->server_crt, "%s%s", leaf, p->ca_crt) < 0)
                return -ENOMEM;
        return 0;
}

int exit_server_plan_new(const char *name, Mode mode, const char *ports, uint16_t control_port,
                         const char *package_url, const char *host, ExitServerPlan **ret, char **ret_error) {
        _cleanup_(exit_server_plan_freep) ExitServerPlan *p = NULL;
        int r;

        assert(name);
        assert(ret);

        if (!string_is_safe_id(name, 64) || name[0] == '.')
                return errorf(ret_error, -EINVAL, "invalid tunnel name '%s'", name);
        if (package_url && (strncmp(package_url, "https://", 8) != 0 || strpbrk(package_url, " \t\r\n'\"\\")))
                return errorf(ret_error, -EINVAL, "--package-url must be an https:// URL without quotes or spaces");
        if (ports && strspn(ports, "0123456789 ,-") != strlen(ports))
                return errorf(ret_error, -EINVAL, "--ports takes ports and ranges: 3389,2222 or 8000-8100");
        if (mode == MODE_HTTP && control_port == 80)
                return errorf(ret_error, -EINVAL,
                              "--control-port 80 is where an HTTP-mode exit server serves HTTP; keep the default "
                              "8123 or pick another");
        if (host && (!*host || strlen(host) > 253 ||
                     strspn(host, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-:") != strlen(host)))
                return errorf(ret_error, -EINVAL, "--host takes a host name or an IP address, got '%s'", host);
        p = calloc(1, sizeof(*p));
        if (!p || !(p->name = strdup(name)) || (ports && !(p->ports = strdup(ports))) ||
            (package_url && !(p->package_url = strdup(package_url))))
                return -ENOMEM;
        for (char *c = p->ports; c && *c; c++)
                if (*c == ',')
                        *c = ' ';
        p->mode = mode;
        p->control_port = control_port;
        r = random_token(&p->token);
        if (r < 0)
                return errorf(ret_error, r, "cannot make a token: %s", strerror(-r));
        r = issue(p, host);
        if (r < 0)
                return errorf(ret_error, r, "cannot make the exit server's certificate: %s", strerror(-r));
        *ret = TAKE_PTR(p);
        return 0;
}

/* A YAML block scalar: every line of text indented by `indent` spaces. */
static void block(FILE *f, const char *text, int indent) {
        const char *l = text;
        while (*l) {
                size_t n = strcspn(l, "\n");
                fprintf(f, "%*s%.*s\n", indent, "", (int) n, l);
                l += n + (l[n] == '\n');
        }
}

static void write_file(FILE *f, const char *path, const char *mode, const char *content) {
        fprintf(f, "  - path: %s\n    permissions: '%s'\n    owner: root:root\n    content: |\n", path, mode);
        block(f, content, 6);
}

/* The host's /etc/inlets.d/NAME.conf. */
static char *server_conf(const ExitServerPlan *p) {
        _cleanup_free_ char *acme = NULL;
        char *conf = NULL;
        size_t size = 0;
        FILE *f;

        if (p->n_acme_domains > 0) {
                f = open_memstream(&acme, &size);
                if (!f)
                        return NULL;
                fputs("# HTTPS with a certificate from ACME (HTTP-01 answered on port 80): the names' DNS\n"
                      "# records must point here first; it retries until they do.\nHTTPSListen=0.0.0.0:443\nACMEDomain=",
                      f);
                for (size_t i = 0; i < p->n_acme_domains; i++)
                        fprintf(f, "%s%s", i ? " " : "", p->acme_domains[i]);
                fprintf(f, "\nACMEEmail=%s\n", p->acme_email);
                if (p->acme_directory)
                        fprintf(f, "ACMEDirectory=%s\n", p->acme_directory);
                if (fclose(f) != 0)
                        return NULL;
        }
        if (asprintf(&conf,
                     "# inletsd exit server, written by inletsctl create\n"
                     "[Tunnel]\nRole=server\nMode=%s\n\n[Server]\nControlListen=0.0.0.0:%u\n%s%s%s%s%s"
                     "# Issued by inletsctl create, which kept no CA key: nothing here can issue another.\n"
                     "CertificateFile=/var/lib/inlets/%s/server.crt\nKeyFile=/var/lib/inlets/%s/server.key\n",
                     mode_to_string(p->mode), p->control_port,
                     p->mode == MODE_HTTP ? "HTTPListen=0.0.0.0:80\n" : "DataListen=0.0.0.0\n", acme ? acme : "",
                     p->ports && p->mode == MODE_TCP ? "AllowPorts=" : "", p->ports && p->mode == MODE_TCP ? p->ports : "",
                     p->ports && p->mode == MODE_TCP ? "\n" : "", p->name, p->name) < 0)
                return NULL;
        return conf;
}

/* s for an error message: at most 100 bytes, anything but printable ASCII as '?'. */
static char *shown(const char *s) {
        char *c = strndup(s, 100);
        for (char *p = c; p && *p; p++)
                if (*p < 0x20 || *p > 0x7e)
                        *p = '?';
        return c;
}

static bool one_word(const char *s) {
        if (!*s || strlen(s) > 1024)
                return false;
        for (; *s; s++)
                if (*s < 0x21 || *s > 0x7e || strchr("\"'\\#;", *s))
                        return false;
        return true;
}

int exit_server_plan_set_acme(ExitServerPlan *p, char *const *domains, size_t n_domains, const char *email,
                              const char *issuer, char **ret_error) {
        _cleanup_(definition_freep) Definition *d = NULL;
        _cleanup_free_ char *conf = NULL, *err = NULL;
        int r;

        assert(p);

        if (p->mode != MODE_HTTP)
                return errorf(ret_error, -EINVAL, "--letsencrypt-domain makes an HTTP-mode exit server, not --mode tcp");
        if (n_domains == 0)
                return errorf(ret_error, -EINVAL, "--letsencrypt-domain: which names?");
        if (!email)
                return errorf(ret_error, -EINVAL,
                              "--letsencrypt-email is required with --letsencrypt-domain (the CA writes there "
                              "before a certificate expires)");
        /* One word of printable ASCII each: a line break or a space would write other keys into
         * the host's file, a control character would break the YAML it travels in. */
        for (size_t i = 0; i < n_domains; i++)
                if (!one_word(domains[i])) {
                        _cleanup_free_ char *v = shown(domains[i]);
                        return errorf(ret_error, -EINVAL, "--letsencrypt-domain: expected a DNS name, got '%s'",
                                      v ?: "");
                }
        if (!one_word(email)) {
                _cleanup_free_ char *v = shown(email);
                return errorf(ret_error, -EINVAL, "--letsencrypt-email: expected an e-mail address, got '%s'",
                              v ?: "");
        }
        /* The control port must not be where HTTPS answers (80 is refused for any HTTP mode). */
        if (p->control_port == 443)
                return errorf(ret_error, -EINVAL,
                              "--control-port 443 is where the exit server serves HTTPS with --letsencrypt-domain; "
                              "keep the default 8123 or pick another");
        if (issuer && !one_word(issuer))
                return errorf(ret_error, -EINVAL, "--letsencrypt-issuer: expected prod, staging or an https:// URL");

        p->acme_domains = strv_free(p->acme_domains);
        p->n_acme_domains = 0;
        for (size_t i = 0; i < n_domains; i++) {
                _cleanup_free_ char *n = strdup(domains[i]);
                bool dup = false;

                if (!n)
                        return -ENOMEM;
                /* The host lower-cases the names and keeps each once; so does the plan (they are the
                 * client's Upstream= names too). */
                for (char *c = n; *c; c++)
                        *c = ascii_tolower(*c);
                for (size_t j = 0; j < p->n_acme_domains; j++)
                        dup = dup || streq(p->acme_domains[j], n);
                if (dup)
                        continue;
                r = strv_push(&p->acme_domains, &p->n_acme_domains, TAKE_PTR(n));
                if (r < 0)
                        return r;
        }
        if (!issuer || strcaseeq(issuer, "prod") || strcaseeq(issuer, "production"))
                issuer = NULL;
        free(p->acme_email);
        free(p->acme_directory);
        p->acme_email = strdup(email);
        p->acme_directory = issuer ? strdup(issuer) : NULL;
        if (!p->acme_email || (issuer && !p->acme_directory))
                return -ENOMEM;

        /* What the host and the client will read, parsed here as they will parse it. */
        conf = server_conf(p);
        d = definition_new(p->name, "<the exit server's definition>");
        if (!conf || !d)
                return -ENOMEM;
        r = definition_parse_buffer(d, "the exit server's definition", conf, strlen(conf), &err);
        if (r < 0)
                return errorf(ret_error, r, "--letsencrypt-*: the exit server would refuse it: %s",
                              err ?: strerror(-r));
        conf = mfree(conf);
        d = definition_free(d);
        conf = exit_server_client_conf(p, "192.0.2.1", "/token");
        d = definition_new(p->name, "<the client's definition>");
        if (!conf || !d)
                return -ENOMEM;
        r = definition_parse_buffer(d, "the client's definition", conf, strlen(conf), &err);
        if (r < 0)
                return errorf(ret_error, r, "--letsencrypt-domain: the tunnel client would refuse it: %s",
                              err ?: strerror(-r));
        return 0;
}

char *exit_server_user_data(const ExitServerPlan *p) {
        _cleanup_free_ char *conf = NULL;
        _cleanup_(erase_and_freep) char *token_line = NULL;
        char *buf = NULL;
        size_t size = 0;
        FILE *f;

        assert(p);

        conf = server_conf(p);
        if (!conf || asprintf(&token_line, "%s\n", p->token) < 0)
                return NULL;
        f = open_memstream(&buf, &size);
        if (!f)
                return NULL;
        fprintf(f, "#cloud-config\n# inletsd exit server '%s' (inletsctl create). Contains its token and TLS key.\n",
                p->name);
        fprintf(f, "package_update: true\npackages:\n  - curl\n  - ca-certificates\nwrite_files:\n");
        {
                char path[256];
                snprintf(path, sizeof(path), "/etc/inlets.d/%s.conf", p->name);
                write_file(f, path, "0644", conf);
                /* root's: inletsd@.service hands it to the daemon with LoadCredential=. */
                snprintf(path, sizeof(path), "/etc/inlets.d/%s.token", p->name);
                write_file(f, path, "0600", token_line);
                snprintf(path, sizeof(path), "/var/lib/inlets/%s/server.crt", p->name);
                write_file(f, path, "0644", p->server_crt);
                snprintf(path, sizeof(path), "/var/lib/inlets/%s/server.key", p->name);
                write_file(f, path, "0600", p->server_key);
        }
        fprintf(f, "runcmd:\n");
        if (p->package_url)
                fprintf(f, "  - [curl, -fsSL, --retry, '5', -o, /tmp/inletsd.deb, '%s']\n"
                           "  - [apt-get, install, -y, /tmp/inletsd.deb]\n", p->package_url);
        else
                fprintf(f, "  - [apt-get, install, -y, inletsd]\n");
        /* The package's sysusers entry made user inletsd; the state directory and the key in it
         * are its own (root-owned until now: write_files runs before the user exists). */
        fprintf(f, "  - [chown, -R, 'inletsd:inletsd', /var/lib/inlets/%s]\n"
                   "  - [chmod, '0700', /var/lib/inlets/%s]\n"
                   "  - [systemctl, daemon-reload]\n"
                   "  - [systemctl, enable, --now, 'inletsd@%s.service']\n", p->name, p->name, p->name);
        /* cloud-init's own copies of the user-data (root-only already) go too, so a disk image
         * or backup made later does not carry the secrets. The metadata service keeps its copy,
         * and cloud-init writes these again at the next boot (docs/cloud.md says what to do). */
        fprintf(f, "  - [rm, -f, /var/lib/cloud/instance/user-data.txt, /var/lib/cloud/instance/user-data.txt.i, "
                   "/var/lib/cloud/instance/cloud-config.txt]\n");
        if (fclose(f) != 0) {
                free(buf);
                return NULL;
        }
        return buf;
}

char *exit_server_client_conf(const ExitServerPlan *p, const char *host, const char *token_file) {
        _cleanup_free_ char *upstreams = NULL;
        size_t size = 0;
        char *s = NULL;
        FILE *f;
        bool v6 = strchr(host, ':');
        /* Ports= takes single ports; an AllowPorts= range leaves the choice to the user. */
        bool ports_ok = p->ports && !strchr(p->ports, '-');

        assert(token_file);

        f = open_memstream(&upstreams, &size);
        if (!f)
                return NULL;
        if (p->mode == MODE_TCP)
                fputs("Upstream=127.0.0.1\n", f);
        else if (p->n_acme_domains == 0)
                fputs("Upstream=http://127.0.0.1:8080\n", f);
        else {
                fputs("# https://NAME/ on the exit server reaches this URL.\n", f);
                for (size_t i = 0; i < p->n_acme_domains; i++)
                        fprintf(f, "Upstream=%s=http://127.0.0.1:8080\n", p->acme_domains[i]);
        }
        if (fclose(f) != 0)
                return NULL;
        if (asprintf(&s,
                     "# inletsd client for exit server '%s', written by inletsctl create.\n"
                     "[Tunnel]\nRole=client\nMode=%s\nTokenFile=%s\n\n[Client]\nURL=wss://%s%s%s:%u\n"
                     "# The exit server's certificate, made here: no trust on first use.\nServerFingerprint=%s\n%s%s%s%s",
                     p->name, mode_to_string(p->mode), token_file, v6 ? "[" : "", host, v6 ? "]" : "",
                     p->control_port, p->fingerprint, upstreams,
                     p->mode == MODE_HTTP ? "" : ports_ok ? "Ports=" : "# Ports=3389   (the public ports to forward)\n",
                     p->mode == MODE_HTTP || !ports_ok ? "" : p->ports, p->mode == MODE_HTTP || !ports_ok ? "" : "\n") < 0)
                return NULL;
        return s;
}
