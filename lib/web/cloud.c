// SPDX-License-Identifier: LGPL-2.1-or-later
/* Exit server plans and their cloud-init user-data; see cloud.h. */

#include <assert.h>
#include <stdio.h>
#include <sys/stat.h>

#include "autotls.h"
#include "cloud.h"
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

char *exit_server_user_data(const ExitServerPlan *p) {
        _cleanup_free_ char *conf = NULL;
        _cleanup_(erase_and_freep) char *token_line = NULL;
        char *buf = NULL;
        size_t size = 0;
        FILE *f;

        assert(p);

        if (asprintf(&conf,
                     "# inletsd exit server, written by inletsctl create\n"
                     "[Tunnel]\nRole=server\nMode=%s\n\n[Server]\nControlListen=0.0.0.0:%u\n%s%s%s%s"
                     "# Issued by inletsctl create, which kept no CA key: nothing here can issue another.\n"
                     "CertificateFile=/var/lib/inlets/%s/server.crt\nKeyFile=/var/lib/inlets/%s/server.key\n",
                     mode_to_string(p->mode), p->control_port,
                     p->mode == MODE_HTTP ? "HTTPListen=0.0.0.0:80\n" : "DataListen=0.0.0.0\n",
                     p->ports && p->mode == MODE_TCP ? "AllowPorts=" : "", p->ports && p->mode == MODE_TCP ? p->ports : "",
                     p->ports && p->mode == MODE_TCP ? "\n" : "", p->name, p->name) < 0 ||
            asprintf(&token_line, "%s\n", p->token) < 0)
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
        char *s = NULL;
        bool v6 = strchr(host, ':');
        /* Ports= takes single ports; an AllowPorts= range leaves the choice to the user. */
        bool ports_ok = p->ports && !strchr(p->ports, '-');

        assert(token_file);

        if (asprintf(&s,
                     "# inletsd client for exit server '%s', written by inletsctl create.\n"
                     "[Tunnel]\nRole=client\nMode=%s\nTokenFile=%s\n\n[Client]\nURL=wss://%s%s%s:%u\n"
                     "# The exit server's certificate, made here: no trust on first use.\nServerFingerprint=%s\n%s%s%s%s",
                     p->name, mode_to_string(p->mode), token_file, v6 ? "[" : "", host, v6 ? "]" : "",
                     p->control_port, p->fingerprint,
                     p->mode == MODE_HTTP ? "Upstream=http://127.0.0.1:8080\n" : "Upstream=127.0.0.1\n",
                     p->mode == MODE_HTTP ? "" : ports_ok ? "Ports=" : "# Ports=3389   (the public ports to forward)\n",
                     p->mode == MODE_HTTP || !ports_ok ? "" : p->ports, p->mode == MODE_HTTP || !ports_ok ? "" : "\n") < 0)
                return NULL;
        return s;
}
