// SPDX-License-Identifier: LGPL-2.1-or-later
/* Exit server plans and their cloud-init user-data; see cloud.h. */

#include <stdio.h>
#include <sys/stat.h>

#include "autotls.h"
#include "cloud.h"

ExitServerPlan *exit_server_plan_free(ExitServerPlan *p) {
        if (!p)
                return NULL;
        free(p->name);
        free(p->ports);
        free(p->package_url);
        erase_and_free(p->token);
        free(p->ca_crt);
        erase_and_free(p->ca_key);
        free(p->ca_fingerprint);
        free(p);
        return NULL;
}

int exit_server_plan_new(const char *name, Mode mode, const char *ports, uint16_t control_port,
                         const char *package_url, ExitServerPlan **ret, char **ret_error) {
        _cleanup_(exit_server_plan_freep) ExitServerPlan *p = NULL;
        char dir[] = "/tmp/inletsd-ca-XXXXXX";
        _cleanup_free_ char *crt_path = NULL, *key_path = NULL;
        int r;

        if (!string_is_safe_id(name, 64) || name[0] == '.')
                return errorf(ret_error, -EINVAL, "invalid tunnel name '%s'", name);
        if (package_url && (strncmp(package_url, "https://", 8) != 0 || strpbrk(package_url, " \t\r\n'\"\\")))
                return errorf(ret_error, -EINVAL, "--package-url must be an https:// URL without quotes or spaces");
        if (ports && strspn(ports, "0123456789 ,-") != strlen(ports))
                return errorf(ret_error, -EINVAL, "--ports takes ports and ranges: 3389,2222 or 8000-8100");
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

        /* The CA is made in a private temporary directory, read, and the files removed. */
        if (!mkdtemp(dir))
                return errorf(ret_error, -errno, "mkdtemp: %m");
        r = autotls_make_ca(dir, &p->ca_fingerprint, ret_error);
        if (asprintf(&crt_path, "%s/ca.crt", dir) < 0 || asprintf(&key_path, "%s/ca.key", dir) < 0)
                r = -ENOMEM;
        if (r >= 0)
                r = read_full_file(crt_path, 65536, &p->ca_crt, NULL);
        if (r >= 0)
                r = read_full_file(key_path, 65536, &p->ca_key, NULL);
        if (key_path)
                (void) unlink(key_path);
        if (crt_path)
                (void) unlink(crt_path);
        (void) rmdir(dir);
        if (r < 0)
                return ret_error && *ret_error ? r : errorf(ret_error, r, "cannot make the CA: %s", strerror(-r));
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
        _cleanup_free_ char *conf = NULL, *token_line = NULL;
        char *buf = NULL;
        size_t size = 0;
        FILE *f;

        if (asprintf(&conf,
                     "# inletsd exit server, written by inletsctl create\n"
                     "[Tunnel]\nRole=server\nMode=%s\n\n[Server]\nControlListen=0.0.0.0:%u\n%s%s%s%s",
                     mode_to_string(p->mode), p->control_port,
                     p->mode == MODE_HTTP ? "HTTPListen=0.0.0.0:80\n" : "DataListen=0.0.0.0\n",
                     p->ports && p->mode == MODE_TCP ? "AllowPorts=" : "", p->ports && p->mode == MODE_TCP ? p->ports : "",
                     p->ports && p->mode == MODE_TCP ? "\n" : "") < 0 ||
            asprintf(&token_line, "%s\n", p->token) < 0)
                return NULL;
        f = open_memstream(&buf, &size);
        if (!f)
                return NULL;
        fprintf(f, "#cloud-config\n# inletsd exit server '%s' (inletsctl create). Contains its token and CA key.\n",
                p->name);
        fprintf(f, "package_update: true\npackages:\n  - curl\n  - ca-certificates\nwrite_files:\n");
        {
                char path[256];
                snprintf(path, sizeof(path), "/etc/inlets.d/%s.conf", p->name);
                write_file(f, path, "0644", conf);
                snprintf(path, sizeof(path), "/etc/inlets.d/%s.token", p->name);
                write_file(f, path, "0600", token_line);
                snprintf(path, sizeof(path), "/var/lib/inlets/%s/ca.crt", p->name);
                write_file(f, path, "0644", p->ca_crt);
                snprintf(path, sizeof(path), "/var/lib/inlets/%s/ca.key", p->name);
                write_file(f, path, "0600", p->ca_key);
        }
        fprintf(f, "runcmd:\n");
        if (p->package_url)
                fprintf(f, "  - [curl, -fsSL, --retry, '5', -o, /tmp/inletsd.deb, '%s']\n"
                           "  - [apt-get, install, -y, /tmp/inletsd.deb]\n", p->package_url);
        else
                fprintf(f, "  - [apt-get, install, -y, inletsd]\n");
        /* The package's sysusers entry made user inletsd; the state directory is its own. */
        fprintf(f, "  - [chown, -R, 'inletsd:inletsd', /var/lib/inlets/%s]\n"
                   "  - [chmod, '0700', /var/lib/inlets/%s]\n"
                   "  - [systemctl, daemon-reload]\n"
                   "  - [systemctl, enable, --now, 'inletsd@%s.service']\n", p->name, p->name, p->name);
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

        if (asprintf(&s,
                     "# inletsd client for exit server '%s', written by inletsctl create.\n"
                     "[Tunnel]\nRole=client\nMode=%s\nTokenFile=%s\n\n[Client]\nURL=wss://%s%s%s:%u\n"
                     "# The exit server's CA, made here: no trust on first use.\nServerFingerprint=%s\n%s%s%s%s",
                     p->name, mode_to_string(p->mode), token_file, v6 ? "[" : "", host, v6 ? "]" : "",
                     p->control_port, p->ca_fingerprint,
                     p->mode == MODE_HTTP ? "Upstream=http://127.0.0.1:8080\n" : "Upstream=127.0.0.1\n",
                     p->mode == MODE_HTTP ? "" : ports_ok ? "Ports=" : "# Ports=3389   (the public ports to forward)\n",
                     p->mode == MODE_HTTP || !ports_ok ? "" : p->ports, p->mode == MODE_HTTP || !ports_ok ? "" : "\n") < 0)
                return NULL;
        return s;
}
