// SPDX-License-Identifier: LGPL-2.1-or-later
/* inletsctl create / delete / list-hosts: an exit server on a host that does not exist yet.
 * The token and the host's certificate are made here (its CA key is never saved); the host gets
 * them in its cloud-init user-data, and the client definition written here pins that
 * certificate, which holds whatever address the cloud gives the host. Providers: "cloud-init"
 * prints the user-data for any cloud; "digitalocean" creates the droplet through the API
 * (cloudapi.c), tagged so that a second create for the same name finds it and delete --ip finds
 * it by address. */

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <sys/stat.h>

#include "cloud.h"
#include "cloudapi.h"
#include "ctl.h"
#include "fileio.h"
#include "log.h"
#include "macro.h"
#include "parse-util.h"
#include "string-util.h"

static void usage(FILE *f) {
        fprintf(f, "Usage: inletsctl create --provider P [--name NAME] [--mode tcp|http]\n"
                   "                        [--ports LIST] [--control-port 8123] [--package-url URL] [--host HOST]\n"
                   "                        [--letsencrypt-domain NAME... --letsencrypt-email ADDR\n"
                   "                         [--letsencrypt-issuer prod|staging|URL] [--dns]]\n"
                   "                        [--output-dir DIR] [--access-token-file F] [--region R] [--size S]\n"
                   "                        [--image I] [--project ID] [--api-url URL] [--poll-interval SEC]\n"
                   "                        [--timeout SEC]\n"
                   "       inletsctl delete --provider P (--id ID | --ip IP) [--access-token-file F] [--region R]\n"
                   "       inletsctl list-hosts --provider P [--access-token-file F] [--region R]\n"
                   "cloud-init prints the exit server's user-data on standard output; a cloud provider creates\n"
                   "the host with it and waits until it is active. Either way the client side (NAME.conf,\n"
                   "NAME.token 0600, NAME-ca.crt) is written into DIR (default: the current directory).\n"
                   "Providers, their API token's variable (or --access-token-file F), and their defaults:\n");
        for (size_t i = 0; cloud_providers[i]; i++) {
                const CloudProvider *p = cloud_providers[i];
                fprintf(f, "  %-13s $%-26s %s %s, size %s, image %s%s%s\n", p->name, p->token_env,
                        p->region_kind ?: "region", p->region, p->size, p->image,
                        p->project_env ? ", project $" : "", p->project_env ?: "");
        }
        fprintf(f, "ec2: --access-token-file takes a credentials file as ~/.aws/credentials (profile $AWS_PROFILE,\n"
                   "or default); without it, $AWS_ACCESS_KEY_ID with $AWS_SECRET_ACCESS_KEY (and $AWS_SESSION_TOKEN),\n"
                   "then ~/.aws/credentials. A host gets a security group of its own opening its ports.\n"
                   "gce: a service account's JSON key (--access-token-file, or $GOOGLE_APPLICATION_CREDENTIALS);\n"
                   "the project is --project or the key's; a firewall rule of the host's own opens its ports.\n"
                   "azure: a service principal, --access-token-file F (the JSON of `az ad sp create-for-rbac\n"
                   "--json-auth`) or $AZURE_CLIENT_ID, $AZURE_CLIENT_SECRET, $AZURE_TENANT_ID; the subscription is\n"
                   "--project, the file's or $AZURE_SUBSCRIPTION_ID. A host is a resource group of its own (network\n"
                   "security group, network, public IP, interface, VM), deleted as a whole.\n"
                   "--letsencrypt-domain (repeat it for more names) makes an HTTP-mode exit server that serves\n"
                   "HTTPS on 443 with a certificate it gets by ACME once the names' DNS records point at it;\n"
                   "--dns creates those records too (DigitalOcean, Hetzner, Scaleway, EC2 with Route 53), and delete\n"
                   "removes them.\n");
}

#define TAG "inletsd"

typedef struct CloudArgs {
        CloudFlags flags;
        const char *id, *ip;
        double poll, timeout;
} CloudArgs;

/* The provider and an API handle from the common flags. */
static int cloud_open(const CloudArgs *a, bool creates, const CloudProvider **ret_p, CloudApi *ret_api) {
        const CloudProvider *p = cloud_provider_find(a->flags.provider);
        _cleanup_(erase_and_freep) char *token = NULL;
        _cleanup_free_ char *err = NULL;
        int r;

        if (!p) {
                fprintf(stderr, "Unknown provider '%s' (digitalocean, hetzner, vultr, linode, scaleway, ec2, gce, "
                                "azure, or cloud-init for create).\n",
                        a->flags.provider);
                return -EINVAL;
        }
        if (p->credentials)
                ; /* found by the provider itself */
        else if (a->flags.token_file) {
                r = read_full_file(a->flags.token_file, 4096, &token, NULL);
                if (r < 0) {
                        fprintf(stderr, "Cannot read %s: %s\n", a->flags.token_file, strerror(-r));
                        return r;
                }
        } else {
                /* The provider's usual variable, as its own tools read it. */
                const char *e = getenv(p->token_env);
                if (!e || !*e) {
                        fprintf(stderr, "%s needs its API token: --access-token-file F, or $%s (never on a command "
                                        "line).\n", p->name, p->token_env);
                        return -EINVAL;
                }
                if (strlen(e) > 4096) {
                        fprintf(stderr, "$%s is too long for an API token.\n", p->token_env);
                        return -EINVAL;
                }
                token = strdup(e);
                if (!token)
                        return -ENOMEM;
        }
        if (token && !*strstrip(token)) {
                fprintf(stderr, "%s is empty.\n", a->flags.token_file ?: p->token_env);
                return -EINVAL;
        }
        r = cloud_api_init(ret_api, p, &a->flags, TAKE_PTR(token), creates, 30, 5, &err);
        if (r < 0) {
                fprintf(stderr, "%s.\n", err ?: strerror(-r));
                return r;
        }
        *ret_p = p;
        return 0;
}

/* -EEXIST, after saying so, when a host carries the tag already. */
static int cloud_check_unused(const CloudProvider *p, CloudApi *api, const char *name,
                              const char *name_tag) {
        _cleanup_free_ char *err = NULL;
        CloudHost *l = NULL;
        size_t n = 0;
        int r;

        r = p->list(api, name_tag, &l, &n, &err);
        if (r < 0) {
                fprintf(stderr, "%s\n", err);
                return r;
        }
        if (n > 0) {
                printf("Exit server '%s' exists already: host %s, status %s, IP %s. Nothing created.\n",
                       name, l[0].id, l[0].status, l[0].ip ?: "-");
                r = -EEXIST;
        }
        cloud_hosts_free(l, n);
        return r;
}

/* Ctrl-C, a hangup or SIGTERM while a host exists: what was made is undone, then exit. The
 * handler only notes it; each step looks before it goes on. */
static volatile sig_atomic_t interrupted;

static void on_interrupt(int sig) {
        interrupted = sig;
}

static bool create_cancelled(void) {
        return interrupted != 0;
}

static int check_interrupted(const CloudHost *h) {
        if (!interrupted)
                return 0;
        fprintf(stderr, "Interrupted (%s): undoing what was made, host %s first.\n", strsignal(interrupted), h->id);
        return -EINTR;
}

/* Polls host h until it is active (*h then holds its address), errored or out of time. */
static int cloud_wait_active(const CloudArgs *a, const CloudProvider *p, CloudApi *api, CloudHost *h) {
        unsigned n = 0, total = (unsigned) (a->timeout / a->poll) + 1;
        double waited = 0;
        int r;

        for (;;) {
                _cleanup_free_ char *err = NULL;
                CloudHost g = {};

                printf("[%u/%u] Host: %s, status: %s\n", ++n, total, h->id, h->status);
                fflush(stdout);
                r = check_interrupted(h);
                if (r < 0)
                        return r;
                if (streq(h->status, "active") && h->ip)
                        return 0;
                if (waited >= a->timeout || streq(h->status, "errored")) {
                        fprintf(stderr,
                                "Host %s did not become active within %.0f s (status %s): deleting it.\n",
                                h->id, a->timeout, h->status);
                        return -ETIMEDOUT;
                }
                usleep((useconds_t) (a->poll * 1e6));
                waited += a->poll;
                r = p->get(api, h->id, &g, &err);
                if (r < 0) {
                        fprintf(stderr, "Watching host %s failed: %s; deleting it.\n", h->id, err);
                        return r;
                }
                free(g.id);
                g.id = TAKE_PTR(h->id);
                cloud_host_done(h);
                *h = g;
        }
}

/* The command that deletes host id again. */
static void print_delete_line(FILE *f, const CloudArgs *a, const CloudProvider *p, const char *id) {
        fprintf(f, "inletsctl delete --provider %s --id %s", p->name, id);
        if (a->flags.token_file)
                fprintf(f, " --access-token-file %s", a->flags.token_file);
        if (p->zoned)
                fprintf(f, " --region %s", a->flags.region ?: p->region);
}

/* The DNS records the host's tags remember (create --dns), for its address. */
static int cloud_dns(const CloudProvider *p, CloudApi *api, const CloudHost *h, char *const *tags, size_t n,
                     char *const *all_tags, size_t n_all) {
        if (p->dns_keep) {
                _cleanup_free_ char *err = NULL;
                int r = p->dns_keep(api, h, all_tags, n_all, &err);
                if (r < 0) {
                        fprintf(stderr, "Keeping the host's address on it failed: %s\n", err ?: strerror(-r));
                        return r == -ENOMEM ? r : -EINVAL; /* no record was asked for */
                }
        }
        for (size_t i = 0; i < n; i++) {
                _cleanup_free_ char *desc = NULL, *err = NULL;
                int r = check_interrupted(h);
                if (r < 0)
                        return r; /* the last request's outcome is known: undone in full */
                r = p->dns_add(api, h, tags[i], &desc, &err);
                if (r < 0) {
                        fprintf(stderr, "Creating a DNS record failed: %s\n", err ?: strerror(-r));
                        return r;
                }
                printf("DNS: %s\n", desc);
                fflush(stdout);
        }
        return 0;
}

/* Undoes a create that failed after the host was made: its DNS records first (when any may have
 * been made), then the host. A host is kept when a record may still name its address: one whose
 * records could not all be removed, or whose last record request has no known outcome (the API
 * may still carry it out). */
static void cloud_undo(const CloudArgs *a, const CloudProvider *p, CloudApi *api, const CloudHost *h,
                       bool dns_tried, int dns_error) {
        _cleanup_free_ char *err = NULL;

        if (dns_tried) {
                /* refused (4xx) or never sent: known not done */
                bool unknown = dns_error < 0 && dns_error != -EACCES && dns_error != -ENOENT && dns_error != -EINVAL &&
                               dns_error != -EINTR;
                unsigned n = 0;
                int r = unknown ? 0 : p->dns_remove(api, h->id, &n, &err);

                if (n > 0)
                        fprintf(stderr, "Removed the %u DNS record%s made for it.\n", n, n == 1 ? "" : "s");
                if (unknown || r < 0) {
                        if (unknown)
                                fprintf(stderr, "Whether that record was made is not known, and the API may still "
                                                "make it.\n");
                        else
                                fprintf(stderr, "Removing its DNS records failed too: %s.\n", err ?: strerror(-r));
                        fprintf(stderr, "Host %s (%s) is kept, since a record may name its address. Delete it (its "
                                        "records first) with: ", h->id, h->ip ?: "-");
                        print_delete_line(stderr, a, p, h->id);
                        fputc('\n', stderr);
                        return;
                }
                err = mfree(err);
        }
        if (p->destroy(api, h->id, &err) < 0)
                fprintf(stderr, "Deleting host %s failed too: %s. Delete it by hand.\n", h->id, err);
}

/* Creates the host and waits until it is active, then makes its DNS records (dns_names); on any
 * failure undoes what it made. */
static int cloud_create(const CloudArgs *a, const char *name, const char *user_data, const char *open_ports,
                        char *const *dns_names, size_t n_dns, CloudHost *ret) {
        const CloudProvider *p;
        _cleanup_(cloud_api_done) CloudApi api = {};
        _cleanup_free_ char *err = NULL, *hostname = NULL, *name_tag = NULL;
        _cleanup_strv_free_ char **dns_tags = NULL;
        _cleanup_free_ const char **tags = NULL;
        CloudHost h = {};
        bool dns_tried = false;
        int r;

        r = cloud_open(a, true, &p, &api);
        if (r < 0)
                return r;
        if (asprintf(&hostname, "inletsd-%s", name) < 0 || asprintf(&name_tag, TAG "-%s", name) < 0)
                return -ENOMEM;
        r = cloud_check_unused(p, &api, name, name_tag);
        if (r < 0)
                return r;
        if (n_dns > 0) {
                /* Every name checked before anything is made; the host remembers them from the start. */
                r = p->dns_plan(&api, dns_names, n_dns, &dns_tags, &err);
                if (r < 0) {
                        fprintf(stderr, "--dns: %s. Nothing created.\n", err ?: strerror(-r));
                        return r;
                }
        }
        tags = new0(const char *, 2 + n_dns);
        if (!tags)
                return -ENOMEM;
        tags[0] = TAG;
        tags[1] = name_tag;
        for (size_t i = 0; i < n_dns; i++)
                tags[2 + i] = dns_tags[i];
        CloudCreate c = {
                .name = hostname,
                .user_data = user_data,
                .open_ports = open_ports,
                .tags = tags,
                .n_tags = 2 + n_dns,
        };
        cloud_create_defaults(&c, &a->flags, p);
        /* from here on a host may exist: an interruption undoes it (not SA_RESTART: a sleep ends) */
        struct sigaction sa = { .sa_handler = on_interrupt };
        sigemptyset(&sa.sa_mask);
        (void) sigaction(SIGINT, &sa, NULL);
        (void) sigaction(SIGTERM, &sa, NULL);
        (void) sigaction(SIGHUP, &sa, NULL);
        printf("Creating host %s on %s: %s %s, size %s, image %s.\n", c.name, p->name, p->region_kind ?: "region",
               c.region, c.size, c.image);
        fflush(stdout);
        api.cancelled = create_cancelled;
        r = p->create(&api, &c, &h, &err);
        if (r == -EEXIST)
                r = -EADDRINUSE; /* -EEXIST says "there already" to the caller: not this */
        if (r < 0) {
                fprintf(stderr, "Creating the host failed: %s\n", err);
                if (r == -EIO || r == -ETIMEDOUT || r == -EBADMSG) /* no answer that tells */
                        fprintf(stderr, "It may have been made all the same: inletsctl list-hosts --provider %s "
                                        "shows it.\n", p->name);
                return r;
        }
        r = check_interrupted(&h);
        if (r >= 0)
                r = cloud_wait_active(a, p, &api, &h);
        if (r >= 0 && n_dns > 0) {
                dns_tried = true;
                r = cloud_dns(p, &api, &h, dns_tags, n_dns, (char *const *) tags, 2 + n_dns);
        }
        if (r >= 0) {
                *ret = h;
                return 0;
        }
        cloud_undo(a, p, &api, &h, dns_tried, r);
        cloud_host_done(&h);
        return r;
}

#define LE_DOMAINS_MAX 32

typedef struct CreateArgs {
        CloudArgs cloud;
        const char *name, *ports, *package_url, *host, *dir;
        uint16_t control_port;
        Mode mode;
        bool mode_set, dns;
        char *le_domains[LE_DOMAINS_MAX];       /* into argv */
        size_t n_le_domains;
        const char *le_email, *le_issuer;
} CreateArgs;

/* 0 to go on, 1 after --help, -EINVAL after saying what is wrong. */
static int parse_create_args(int argc, char *argv[], CreateArgs *a) {
        enum { OPT_NAME = _CLOUD_OPT_MAX, OPT_MODE, OPT_PORTS, OPT_CONTROL_PORT, OPT_PACKAGE_URL, OPT_HOST,
               OPT_OUTPUT_DIR, OPT_POLL, OPT_TIMEOUT, OPT_LE_DOMAIN, OPT_LE_EMAIL, OPT_LE_ISSUER, OPT_DNS };
        static const struct option options[] = {
                CLOUD_OPTIONS,
                { "name", required_argument, NULL, OPT_NAME },
                { "mode", required_argument, NULL, OPT_MODE },
                { "ports", required_argument, NULL, OPT_PORTS },
                { "control-port", required_argument, NULL, OPT_CONTROL_PORT },
                { "package-url", required_argument, NULL, OPT_PACKAGE_URL },
                { "host", required_argument, NULL, OPT_HOST },
                { "output-dir", required_argument, NULL, OPT_OUTPUT_DIR },
                { "poll-interval", required_argument, NULL, OPT_POLL },
                { "timeout", required_argument, NULL, OPT_TIMEOUT },
                { "letsencrypt-domain", required_argument, NULL, OPT_LE_DOMAIN },
                { "letsencrypt-email", required_argument, NULL, OPT_LE_EMAIL },
                { "letsencrypt-issuer", required_argument, NULL, OPT_LE_ISSUER },
                { "dns", no_argument, NULL, OPT_DNS },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        int c;

        optind = 0;
        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0) {
                if (cloud_flags_parse(&a->cloud.flags, c, optarg))
                        continue;
                switch (c) {
                case OPT_NAME:
                        a->name = optarg;
                        break;
                case OPT_MODE:
                        a->mode = mode_from_string(optarg);
                        if (a->mode < 0) {
                                fprintf(stderr, "--mode: expected tcp or http, got '%s'\n", optarg);
                                return -EINVAL;
                        }
                        a->mode_set = true;
                        break;
                case OPT_LE_DOMAIN:
                        if (a->n_le_domains >= LE_DOMAINS_MAX) {
                                fprintf(stderr, "--letsencrypt-domain: at most %d names\n", LE_DOMAINS_MAX);
                                return -EINVAL;
                        }
                        a->le_domains[a->n_le_domains++] = optarg;
                        break;
                case OPT_LE_EMAIL:
                        a->le_email = optarg;
                        break;
                case OPT_LE_ISSUER:
                        a->le_issuer = optarg;
                        break;
                case OPT_DNS:
                        a->dns = true;
                        break;
                case OPT_PORTS:
                        a->ports = optarg;
                        break;
                case OPT_CONTROL_PORT:
                        if (parse_port(optarg, &a->control_port) < 0) {
                                fprintf(stderr, "--control-port: expected a port, got '%s'\n", optarg);
                                return -EINVAL;
                        }
                        break;
                case OPT_PACKAGE_URL:
                        a->package_url = optarg;
                        break;
                case OPT_HOST:
                        a->host = optarg;
                        break;
                case OPT_OUTPUT_DIR:
                        a->dir = optarg;
                        break;
                case OPT_POLL:
                case OPT_TIMEOUT: {
                        char *e;
                        double v = strtod(optarg, &e);
                        if (*e || v <= 0 || v > 86400) {
                                fprintf(stderr, "%s: expected seconds, got '%s'\n",
                                        c == OPT_POLL ? "--poll-interval" : "--timeout", optarg);
                                return -EINVAL;
                        }
                        *(c == OPT_POLL ? &a->cloud.poll : &a->cloud.timeout) = v;
                        break;
                }
                case 'h':
                        usage(stdout);
                        return 1;
                default:
                        usage(stderr);
                        return -EINVAL;
                }
        }
        if (optind < argc || !a->cloud.flags.provider) {
                usage(stderr);
                return -EINVAL;
        }
        if ((a->le_email || a->le_issuer) && a->n_le_domains == 0) {
                fprintf(stderr, "--letsencrypt-email and --letsencrypt-issuer go with --letsencrypt-domain NAME.\n");
                return -EINVAL;
        }
        if (a->n_le_domains > 0 && !a->mode_set)
                a->mode = MODE_HTTP; /* HTTPS for those names is HTTP mode */
        if (a->dns) {
                const CloudProvider *p = cloud_provider_find(a->cloud.flags.provider);
                if (a->n_le_domains == 0) {
                        fprintf(stderr, "--dns creates the records of the --letsencrypt-domain names: which names?\n");
                        return -EINVAL;
                }
                if (!p || !p->dns_add) {
                        fprintf(stderr, "--dns: creating DNS records is supported with --provider digitalocean, "
                                        "hetzner, scaleway and ec2 (Route 53) only (so far); create them yourself.\n");
                        return -EINVAL;
                }
        }
        if (!streq(a->cloud.flags.provider, "cloud-init") && !cloud_provider_find(a->cloud.flags.provider)) {
                fprintf(stderr, "Unknown provider '%s': digitalocean, hetzner, vultr, linode, scaleway, ec2, gce, or "
                                "cloud-init (prints user-data any cloud "
                                "takes).\n", a->cloud.flags.provider);
                return -EINVAL;
        }
        return 0;
}

/* The client side of an exit server: NAME.conf, NAME.token, NAME-ca.crt in DIR. */
typedef struct ClientFiles {
        char *conf_path, *tok_path, *ca_path;
        char *token_line;       /* secret: NAME.token's content */
} ClientFiles;

static void client_files_done(ClientFiles *f) {
        free(f->conf_path);
        free(f->tok_path);
        free(f->ca_path);
        erase_and_free(f->token_line);
}

static int client_files_new(const char *dir, const char *name, const ExitServerPlan *p, ClientFiles *ret) {
        *ret = (ClientFiles) {
                .conf_path = asprintf_safe("%s/%s.conf", dir, name),
                .tok_path = asprintf_safe("%s/%s.token", dir, name),
                .ca_path = asprintf_safe("%s/%s-ca.crt", dir, name),
                .token_line = asprintf_safe("%s\n", p->token),
        };
        return ret->conf_path && ret->tok_path && ret->ca_path && ret->token_line ? 0 : -ENOMEM;
}

static int client_files_write(const ClientFiles *f, const ExitServerPlan *p, const char *client) {
        int r;

        r = write_file_atomic(f->tok_path, f->token_line, strlen(f->token_line), 0600);
        if (r >= 0)
                r = write_file_atomic(f->ca_path, p->ca_crt, strlen(p->ca_crt), 0644);
        if (r >= 0)
                r = write_file_atomic(f->conf_path, client, strlen(client), 0644);
        return r;
}

/* The inlets-style client's --upstream flags. */
static void print_upstreams(const CreateArgs *a, const ExitServerPlan *p) {
        if (a->mode == MODE_TCP)
                printf("--upstream 127.0.0.1%s%s", p->ports ? " --ports " : "", p->ports ? p->ports : "");
        else if (p->n_acme_domains == 0)
                printf("--upstream http://127.0.0.1:8080");
        else
                for (size_t i = 0; i < p->n_acme_domains; i++)
                        printf("%s--upstream %s=http://127.0.0.1:8080", i ? " " : "", p->acme_domains[i]);
}

/* What HTTPS by ACME waits for. */
static void print_acme_next(FILE *out, const ExitServerPlan *p, const char *ip, bool dns_made) {
        if (p->n_acme_domains == 0)
                return;
        if (dns_made) {
                fprintf(out, "HTTPS: the exit server asks %s for the certificate once the records above resolve (it\n"
                             "retries until then), then serves https://%s/ through the tunnel.\n",
                        !p->acme_directory ? "Let's Encrypt" :
                        streq(p->acme_directory, "staging") ? "Let's Encrypt's staging CA" : p->acme_directory,
                        p->acme_domains[0]);
                return;
        }
        fprintf(out, "HTTPS: point the DNS records of");
        for (size_t i = 0; i < p->n_acme_domains; i++)
                fprintf(out, " %s", p->acme_domains[i]);
        fprintf(out, " at %s.\nThe exit server asks %s for their certificate once they resolve (it retries\n"
                     "until then), then serves https://%s/ through the tunnel.\n",
                ip ?: "the host's address",
                !p->acme_directory ? "Let's Encrypt" :
                streq(p->acme_directory, "staging") ? "Let's Encrypt's staging CA" : p->acme_directory,
                p->acme_domains[0]);
}

static void print_host_made(const CreateArgs *a, const ExitServerPlan *p, const ClientFiles *f,
                            const CloudHost *h) {
        bool v6 = strchr(h->ip, ':');

        printf("Exit server '%s' is host %s at %s.\nClient definition: %s (token %s, CA %s, pinned %s).\n"
               "Run it: inletsd --config %s   (or install it as /etc/inlets.d/%s.conf and "
               "systemctl enable --now inletsd@%s)\n"
               "or, inlets-style: inletsd %s client --url wss://%s%s%s:%u --fingerprint %s --token-file %s ",
               a->name, h->id, h->ip, f->conf_path, f->tok_path, f->ca_path, p->fingerprint, f->conf_path,
               a->name, a->name, mode_to_string(a->mode), v6 ? "[" : "", h->ip, v6 ? "]" : "",
               a->control_port, p->fingerprint, f->tok_path);
        print_upstreams(a, p);
        printf("\n");
        print_acme_next(stdout, p, h->ip, a->dns);
        printf("Delete it: ");
        print_delete_line(stdout, &a->cloud, cloud_provider_find(a->cloud.flags.provider), h->id);
        printf("   (or --ip %s)\n", h->ip);
}

static void print_user_data(const CreateArgs *a, const ExitServerPlan *p, const ClientFiles *f,
                            const char *user_data) {
        fputs(user_data, stdout);
        fprintf(stderr,
                "Exit server '%s': give the user-data above to the new host (it holds the token and the "
                "host's TLS key).\nClient definition: %s (token %s, CA %s, pinned %s).\n",
                a->name, f->conf_path, f->tok_path, f->ca_path, p->fingerprint);
        if (!a->host)
                fprintf(stderr, "Set URL= in %s to the host's address once it has one (or pass --host).\n",
                        f->conf_path);
        if (!a->package_url)
                fprintf(stderr,
                        "No --package-url: the host installs the 'inletsd' package from its own archive.\n");
        print_acme_next(stderr, p, a->host, false);
}

int verb_create(int argc, char *argv[]) {
        CreateArgs a = { .cloud = { .poll = 5, .timeout = 300 }, .name = "inlets", .dir = ".",
                         .control_port = DEFAULT_CONTROL_PORT, .mode = MODE_TCP };
        _cleanup_(exit_server_plan_freep) ExitServerPlan *p = NULL;
        _cleanup_(client_files_done) ClientFiles f = {};
        _cleanup_(cloud_host_done) CloudHost host_made = {};
        _cleanup_free_ char *err = NULL, *client = NULL;
        _cleanup_(erase_and_freep) char *user_data = NULL; /* the token and the host's TLS key */
        const char *host;
        int r;

        r = parse_create_args(argc, argv, &a);
        if (r != 0)
                return r > 0 ? EXIT_OK : EXIT_USAGE;

        r = exit_server_plan_new(a.name, a.mode, a.ports, a.control_port, a.package_url, a.host, &p, &err);
        if (r >= 0 && a.n_le_domains > 0)
                r = exit_server_plan_set_acme(p, a.le_domains, a.n_le_domains, a.le_email, a.le_issuer, &err);
        if (r < 0) {
                fprintf(stderr, "%s\n", err ?: strerror(-r));
                return EXIT_USAGE;
        }
        user_data = exit_server_user_data(p);
        if (client_files_new(a.dir, a.name, p, &f) < 0 || !user_data)
                return log_oom(), EXIT_ERROR;
        /* Before anything is made: a host whose client side cannot be written is a host lost. */
        if (access(a.dir, W_OK) < 0) {
                fprintf(stderr, "Cannot write the client files in %s: %s\n", a.dir, strerror(errno));
                return EXIT_ERROR;
        }
        if (access(f.conf_path, F_OK) == 0 && !arg.force) {
                fprintf(stderr, "%s exists; --force replaces it (and its token).\n", f.conf_path);
                return EXIT_ERROR;
        }

        host = a.host;
        if (!streq(a.cloud.flags.provider, "cloud-init")) {
                /* what a cloud firewall opens: the control port, and the public ports */
                _cleanup_free_ char *open_ports = asprintf_safe("%u %s", p->control_port,
                                                                p->mode == MODE_HTTP ? "80 443" : p->ports ?: "1-65535");
                if (!open_ports)
                        return EXIT_ERROR;
                r = cloud_create(&a.cloud, a.name, user_data, open_ports, a.dns ? p->acme_domains : NULL,
                                 a.dns ? p->n_acme_domains : 0, &host_made);
                if (r == -EEXIST)
                        return EXIT_OK;
                if (r == -EINTR)
                        return 128 + interrupted; /* as the shell says it */
                if (r < 0)
                        return EXIT_ERROR;
                host = host_made.ip;
        }

        client = exit_server_client_conf(p, host ?: "EXIT-SERVER-ADDRESS", f.tok_path);
        if (!client)
                return log_oom(), EXIT_ERROR;
        r = client_files_write(&f, p, client);
        if (r < 0) {
                fprintf(stderr, "Cannot write the client files in %s: %s\n", a.dir, strerror(-r));
                if (host_made.id)
                        fprintf(stderr, "The host was made: inletsctl delete --provider %s --id %s removes it.\n",
                                a.cloud.flags.provider, host_made.id);
                return EXIT_ERROR;
        }
        if (host_made.id)
                print_host_made(&a, p, &f, &host_made);
        else
                print_user_data(&a, p, &f, user_data);
        return EXIT_OK;
}

static int parse_cloud_args(int argc, char *argv[], CloudArgs *a) {
        enum { OPT_ID = _CLOUD_OPT_MAX, OPT_IP };
        static const struct option options[] = {
                { "provider", required_argument, NULL, CLOUD_OPT_PROVIDER },
                { "access-token-file", required_argument, NULL, CLOUD_OPT_TOKEN_FILE },
                { "api-url", required_argument, NULL, CLOUD_OPT_API_URL },
                { "region", required_argument, NULL, CLOUD_OPT_REGION },
                { "id", required_argument, NULL, OPT_ID },
                { "ip", required_argument, NULL, OPT_IP },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        int c;

        optind = 0;
        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0) {
                if (cloud_flags_parse(&a->flags, c, optarg))
                        continue;
                switch (c) {
                case OPT_ID:
                        a->id = optarg;
                        break;
                case OPT_IP:
                        a->ip = optarg;
                        break;
                case 'h':
                        usage(stdout);
                        return 1;
                default:
                        usage(stderr);
                        return -EINVAL;
                }
        }
        if (optind < argc || !a->flags.provider) {
                usage(stderr);
                return -EINVAL;
        }
        return 0;
}

int verb_list_hosts(int argc, char *argv[]) {
        CloudArgs a = {};
        const CloudProvider *p;
        _cleanup_(cloud_api_done) CloudApi api = {};
        _cleanup_free_ char *err = NULL;
        CloudHost *l = NULL;
        size_t n = 0;
        int r = parse_cloud_args(argc, argv, &a);

        if (r != 0)
                return r > 0 ? EXIT_OK : EXIT_USAGE;
        r = cloud_open(&a, false, &p, &api);
        if (r < 0)
                return r == -EINVAL ? EXIT_USAGE : EXIT_ERROR; /* refused credentials are no usage error */
        r = p->list(&api, TAG, &l, &n, &err);
        if (r < 0) {
                fprintf(stderr, "%s\n", err);
                return EXIT_ERROR;
        }
        printf("%-12s %-24s %-10s %s\n", "ID", "NAME", "STATUS", "IP");
        for (size_t i = 0; i < n; i++)
                printf("%-12s %-24s %-10s %s\n", l[i].id, l[i].name, l[i].status, l[i].ip ?: "-");
        cloud_hosts_free(l, n);
        return EXIT_OK;
}

int verb_delete(int argc, char *argv[]) {
        CloudArgs a = {};
        const CloudProvider *p;
        _cleanup_(cloud_api_done) CloudApi api = {};
        _cleanup_free_ char *err = NULL, *id = NULL;
        int r = parse_cloud_args(argc, argv, &a);

        if (r != 0)
                return r > 0 ? EXIT_OK : EXIT_USAGE;
        if (!!a.id == !!a.ip) {
                fprintf(stderr, "delete needs exactly one of --id and --ip.\n");
                return EXIT_USAGE;
        }
        if (a.id && !cloud_id_is_valid(a.id)) {
                fprintf(stderr, "--id takes a host id as create and list-hosts show it (letters, digits and "
                                "hyphens).\n");
                return EXIT_USAGE;
        }
        r = cloud_open(&a, false, &p, &api);
        if (r < 0)
                return r == -EINVAL ? EXIT_USAGE : EXIT_ERROR; /* refused credentials are no usage error */
        if (a.ip) {
                /* Only hosts we made: found through our tag, never any host with that address. */
                CloudHost *l = NULL;
                size_t n = 0;
                r = p->list(&api, TAG, &l, &n, &err);
                if (r < 0) {
                        fprintf(stderr, "%s\n", err);
                        return EXIT_ERROR;
                }
                for (size_t i = 0; i < n && !id; i++)
                        if (streq_ptr(l[i].ip, a.ip))
                                id = strdup(l[i].id);
                cloud_hosts_free(l, n);
                if (!id) {
                        fprintf(stderr, "No host tagged %s has IP %s.\n", TAG, a.ip);
                        return EXIT_ERROR;
                }
        } else if (!(id = strdup(a.id)))
                return EXIT_ERROR;
        if (p->dns_remove) {
                /* The DNS records create --dns made for it first, while its address is still its own. */
                unsigned n = 0;
                r = p->dns_remove(&api, id, &n, &err);
                if (n > 0)
                        printf("Removed %u DNS record%s.\n", n, n == 1 ? "" : "s");
                if (r == -ENOENT) {
                        /* Said to be gone: nothing to delete, and no licence to try. */
                        fprintf(stderr, "%s\n", err ?: strerror(-r));
                        return EXIT_ERROR;
                }
                if (r < 0) {
                        fprintf(stderr, "Removing the host's DNS records failed: %s. Host %s is kept, since a record "
                                        "may still name its address; run delete again.\n", err ?: strerror(-r), id);
                        return EXIT_ERROR;
                }
                err = mfree(err);
        }
        r = p->destroy(&api, id, &err);
        if (r < 0) {
                fprintf(stderr, "%s\n", err);
                return EXIT_ERROR;
        }
        printf("Deleted host %s.\n", id);
        return EXIT_OK;
}
