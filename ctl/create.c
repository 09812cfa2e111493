// SPDX-License-Identifier: LGPL-2.1-or-later
/* inletsctl create / delete / list-hosts: an exit server on a host that does not exist yet.
 * The token and the host's certificate are made here (its CA key is never saved); the host gets
 * them in its cloud-init user-data, and the client definition written here pins that
 * certificate, which holds whatever address the cloud gives the host. Providers: "cloud-init"
 * prints the user-data for any cloud; "digitalocean" creates the droplet through the API
 * (cloudapi.c), tagged so that a second create for the same name finds it and delete --ip finds
 * it by address. */

#include <getopt.h>
#include <stdio.h>
#include <sys/stat.h>

#include "cloud.h"
#include "cloudapi.h"
#include "ctl.h"
#include "log.h"
#include "util.h"

static void usage(FILE *f) {
        fprintf(f, "Usage: inletsctl create --provider cloud-init|digitalocean [--name NAME] [--mode tcp|http]\n"
                   "                        [--ports LIST] [--control-port 8123] [--package-url URL] [--host HOST]\n"
                   "                        [--output-dir DIR] [--access-token-file F] [--region R] [--size S]\n"
                   "                        [--image I] [--api-url URL] [--poll-interval SEC] [--timeout SEC]\n"
                   "       inletsctl delete --provider P (--id ID | --ip IP) --access-token-file F\n"
                   "       inletsctl list-hosts --provider P --access-token-file F\n"
                   "cloud-init prints the exit server's user-data on standard output; a cloud provider creates\n"
                   "the host with it and waits until it is active. Either way the client side (NAME.conf,\n"
                   "NAME.token 0600, NAME-ca.crt) is written into DIR (default: the current directory).\n");
}

#define TAG "inletsd"

typedef struct CloudArgs {
        const char *provider, *token_file, *region, *size, *image, *api_url, *id, *ip;
        double poll, timeout;
} CloudArgs;

/* The provider and an API handle from the common flags. */
static int cloud_open(const CloudArgs *a, const CloudProvider **ret_p, CloudApi *ret_api) {
        const CloudProvider *p = cloud_provider_find(a->provider);
        _cleanup_(erase_and_freep) char *token = NULL;
        int r;

        if (!p) {
                fprintf(stderr, "Unknown provider '%s' (digitalocean, or cloud-init for create).\n", a->provider);
                return -EINVAL;
        }
        if (!a->token_file) {
                fprintf(stderr, "--access-token-file is required for %s (the token never goes on a command line).\n",
                        p->name);
                return -EINVAL;
        }
        r = read_full_file(a->token_file, 4096, &token, NULL);
        if (r < 0) {
                fprintf(stderr, "Cannot read %s: %s\n", a->token_file, strerror(-r));
                return r;
        }
        strstrip(token);
        if (!*token) {
                fprintf(stderr, "%s is empty.\n", a->token_file);
                return -EINVAL;
        }
        *ret_p = p;
        *ret_api = (CloudApi) { .base_url = strdup(a->api_url ?: p->api_url), .token = TAKE_PTR(token),
                                .timeout_sec = 30, .max_retries = 5 };
        return ret_api->base_url ? 0 : -ENOMEM;
}

static void hosts_free(CloudHost *l, size_t n) {
        for (size_t i = 0; i < n; i++)
                cloud_host_done(&l[i]);
        free(l);
}

/* Creates the host and waits until it is active; on any failure deletes what it created. */
static int cloud_create(const CloudArgs *a, const char *name, const char *user_data, CloudHost *ret) {
        const CloudProvider *p;
        _cleanup_(cloud_api_done) CloudApi api = {};
        _cleanup_free_ char *err = NULL, *hostname = NULL, *name_tag = NULL;
        CloudHost h = {};
        double waited = 0;
        unsigned n = 0, total;
        int r;

        r = cloud_open(a, &p, &api);
        if (r < 0)
                return r;
        if (asprintf(&hostname, "inletsd-%s", name) < 0 || asprintf(&name_tag, TAG "-%s", name) < 0)
                return -ENOMEM;
        {
                CloudHost *l = NULL;
                size_t nl = 0;
                r = p->list(&api, name_tag, &l, &nl, &err);
                if (r < 0) {
                        fprintf(stderr, "%s\n", err);
                        return r;
                }
                if (nl > 0) {
                        printf("Exit server '%s' exists already: host %s, status %s, IP %s. Nothing created.\n", name,
                               l[0].id, l[0].status, l[0].ip ?: "-");
                        hosts_free(l, nl);
                        return -EEXIST;
                }
                hosts_free(l, nl);
        }
        CloudCreate c = {
                .name = hostname,
                .region = a->region ?: p->region,
                .size = a->size ?: p->size,
                .image = a->image ?: p->image,
                .user_data = user_data,
                .tags = (const char *const[]) { TAG, name_tag },
                .n_tags = 2,
        };
        r = p->create(&api, &c, &h, &err);
        if (r < 0) {
                fprintf(stderr, "Creating the host failed: %s\n", err);
                return r;
        }
        total = (unsigned) (a->timeout / a->poll) + 1;
        for (;;) {
                printf("[%u/%u] Host: %s, status: %s\n", ++n, total, h.id, h.status);
                fflush(stdout);
                if (streq(h.status, "active") && h.ip)
                        break;
                if (waited >= a->timeout || streq(h.status, "errored")) {
                        fprintf(stderr, "Host %s did not become active within %.0f s (status %s): deleting it.\n",
                                h.id, a->timeout, h.status);
                        r = -ETIMEDOUT;
                        goto undo;
                }
                usleep((useconds_t) (a->poll * 1e6));
                waited += a->poll;
                CloudHost g = {};
                free(err);
                err = NULL;
                r = p->get(&api, h.id, &g, &err);
                if (r < 0) {
                        fprintf(stderr, "Watching host %s failed: %s; deleting it.\n", h.id, err);
                        goto undo;
                }
                free(g.id);
                g.id = TAKE_PTR(h.id);
                cloud_host_done(&h);
                h = g;
        }
        *ret = h;
        return 0;
undo:
        free(err);
        err = NULL;
        if (p->destroy(&api, h.id, &err) < 0)
                fprintf(stderr, "Deleting host %s failed too: %s. Delete it by hand.\n", h.id, err);
        cloud_host_done(&h);
        return r;
}

int verb_create(int argc, char *argv[]) {
        enum { OPT_PROVIDER = 0x100, OPT_NAME, OPT_MODE, OPT_PORTS, OPT_CONTROL_PORT, OPT_PACKAGE_URL, OPT_HOST,
               OPT_OUTPUT_DIR, OPT_TOKEN_FILE, OPT_REGION, OPT_SIZE, OPT_IMAGE, OPT_API_URL, OPT_POLL, OPT_TIMEOUT };
        static const struct option options[] = {
                { "provider", required_argument, NULL, OPT_PROVIDER },
                { "name", required_argument, NULL, OPT_NAME },
                { "mode", required_argument, NULL, OPT_MODE },
                { "ports", required_argument, NULL, OPT_PORTS },
                { "control-port", required_argument, NULL, OPT_CONTROL_PORT },
                { "package-url", required_argument, NULL, OPT_PACKAGE_URL },
                { "host", required_argument, NULL, OPT_HOST },
                { "output-dir", required_argument, NULL, OPT_OUTPUT_DIR },
                { "access-token-file", required_argument, NULL, OPT_TOKEN_FILE },
                { "region", required_argument, NULL, OPT_REGION },
                { "size", required_argument, NULL, OPT_SIZE },
                { "image", required_argument, NULL, OPT_IMAGE },
                { "api-url", required_argument, NULL, OPT_API_URL },
                { "poll-interval", required_argument, NULL, OPT_POLL },
                { "timeout", required_argument, NULL, OPT_TIMEOUT },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        const char *provider = NULL, *name = "inlets", *ports = NULL, *package_url = NULL, *host = NULL, *dir = ".";
        _cleanup_(exit_server_plan_freep) ExitServerPlan *p = NULL;
        _cleanup_free_ char *err = NULL, *user_data = NULL, *client = NULL, *conf_path = NULL, *tok_path = NULL,
                            *ca_path = NULL, *token_line = NULL;
        uint16_t control_port = DEFAULT_CONTROL_PORT;
        CloudArgs ca = { .poll = 5, .timeout = 300 };
        CloudHost host_made = {};
        Mode mode = MODE_TCP;
        int c, r;

        optind = 0;
        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case OPT_PROVIDER:
                        provider = optarg;
                        break;
                case OPT_NAME:
                        name = optarg;
                        break;
                case OPT_MODE:
                        mode = mode_from_string(optarg);
                        if (mode < 0) {
                                fprintf(stderr, "--mode: expected tcp or http, got '%s'\n", optarg);
                                return EXIT_USAGE;
                        }
                        break;
                case OPT_PORTS:
                        ports = optarg;
                        break;
                case OPT_CONTROL_PORT:
                        if (parse_port(optarg, &control_port) < 0) {
                                fprintf(stderr, "--control-port: expected a port, got '%s'\n", optarg);
                                return EXIT_USAGE;
                        }
                        break;
                case OPT_PACKAGE_URL:
                        package_url = optarg;
                        break;
                case OPT_HOST:
                        host = optarg;
                        break;
                case OPT_OUTPUT_DIR:
                        dir = optarg;
                        break;
                case OPT_TOKEN_FILE:
                        ca.token_file = optarg;
                        break;
                case OPT_REGION:
                        ca.region = optarg;
                        break;
                case OPT_SIZE:
                        ca.size = optarg;
                        break;
                case OPT_IMAGE:
                        ca.image = optarg;
                        break;
                case OPT_API_URL:
                        ca.api_url = optarg;
                        break;
                case OPT_POLL:
                case OPT_TIMEOUT: {
                        char *e;
                        double v = strtod(optarg, &e);
                        if (*e || v <= 0 || v > 86400) {
                                fprintf(stderr, "%s: expected seconds, got '%s'\n",
                                        c == OPT_POLL ? "--poll-interval" : "--timeout", optarg);
                                return EXIT_USAGE;
                        }
                        *(c == OPT_POLL ? &ca.poll : &ca.timeout) = v;
                        break;
                }
                case 'h':
                        usage(stdout);
                        return EXIT_OK;
                default:
                        usage(stderr);
                        return EXIT_USAGE;
                }
        if (optind < argc || !provider) {
                usage(stderr);
                return EXIT_USAGE;
        }
        ca.provider = provider;
        if (!streq(provider, "cloud-init") && !cloud_provider_find(provider)) {
                fprintf(stderr, "Unknown provider '%s': digitalocean, or cloud-init (prints user-data any cloud "
                                "takes).\n", provider);
                return EXIT_USAGE;
        }

        r = exit_server_plan_new(name, mode, ports, control_port, package_url, host, &p, &err);
        if (r < 0) {
                fprintf(stderr, "%s\n", err ?: strerror(-r));
                return EXIT_USAGE;
        }
        user_data = exit_server_user_data(p);
        if (asprintf(&conf_path, "%s/%s.conf", dir, name) < 0 || asprintf(&tok_path, "%s/%s.token", dir, name) < 0 ||
            asprintf(&ca_path, "%s/%s-ca.crt", dir, name) < 0 || asprintf(&token_line, "%s\n", p->token) < 0 ||
            !user_data)
                return log_oom(), EXIT_ERROR;
        if (access(conf_path, F_OK) == 0 && !arg.force) {
                fprintf(stderr, "%s exists; --force replaces it (and its token).\n", conf_path);
                return EXIT_ERROR;
        }
        if (!streq(provider, "cloud-init")) {
                r = cloud_create(&ca, name, user_data, &host_made);
                if (r == -EEXIST)
                        return EXIT_OK;
                if (r < 0)
                        return EXIT_ERROR;
                host = host_made.ip;
        }
        client = exit_server_client_conf(p, host ?: "EXIT-SERVER-ADDRESS", tok_path);
        if (!client)
                return log_oom(), EXIT_ERROR;
        r = write_file_atomic(tok_path, token_line, strlen(token_line), 0600);
        if (r >= 0)
                r = write_file_atomic(ca_path, p->ca_crt, strlen(p->ca_crt), 0644);
        if (r >= 0)
                r = write_file_atomic(conf_path, client, strlen(client), 0644);
        explicit_bzero(token_line, strlen(token_line));
        if (r < 0) {
                fprintf(stderr, "Cannot write the client files in %s: %s\n", dir, strerror(-r));
                return EXIT_ERROR;
        }
        if (host_made.id) {
                bool v6 = strchr(host_made.ip, ':');
                printf("Exit server '%s' is host %s at %s.\nClient definition: %s (token %s, CA %s, pinned %s).\n"
                       "Run it: inletsd --config %s   (or install it as /etc/inlets.d/%s.conf and "
                       "systemctl enable --now inletsd@%s)\n"
                       "or, inlets-style: inletsd %s client --url wss://%s%s%s:%u --fingerprint %s --token-file %s "
                       "--upstream %s%s%s\n",
                       name, host_made.id, host_made.ip, conf_path, tok_path, ca_path, p->fingerprint, conf_path, name,
                       name, mode_to_string(mode), v6 ? "[" : "", host_made.ip, v6 ? "]" : "", control_port,
                       p->fingerprint, tok_path, mode == MODE_HTTP ? "http://127.0.0.1:8080" : "127.0.0.1",
                       mode == MODE_TCP && p->ports ? " --ports " : "", mode == MODE_TCP && p->ports ? p->ports : "");
                cloud_host_done(&host_made);
                return EXIT_OK;
        }
        fputs(user_data, stdout);
        fprintf(stderr, "Exit server '%s': give the user-data above to the new host (it holds the token and the "
                        "host's TLS key).\nClient definition: %s (token %s, CA %s, pinned %s).\n", name, conf_path,
                tok_path, ca_path, p->fingerprint);
        if (!host)
                fprintf(stderr, "Set URL= in %s to the host's address once it has one (or pass --host).\n", conf_path);
        if (!package_url)
                fprintf(stderr, "No --package-url: the host installs the 'inletsd' package from its own archive.\n");
        return EXIT_OK;
}

static int parse_cloud_args(int argc, char *argv[], CloudArgs *a) {
        enum { OPT_PROVIDER = 0x100, OPT_TOKEN_FILE, OPT_API_URL, OPT_ID, OPT_IP };
        static const struct option options[] = {
                { "provider", required_argument, NULL, OPT_PROVIDER },
                { "access-token-file", required_argument, NULL, OPT_TOKEN_FILE },
                { "api-url", required_argument, NULL, OPT_API_URL },
                { "id", required_argument, NULL, OPT_ID },
                { "ip", required_argument, NULL, OPT_IP },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        int c;

        optind = 0;
        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case OPT_PROVIDER:
                        a->provider = optarg;
                        break;
                case OPT_TOKEN_FILE:
                        a->token_file = optarg;
                        break;
                case OPT_API_URL:
                        a->api_url = optarg;
                        break;
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
        if (optind < argc || !a->provider) {
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
        if (cloud_open(&a, &p, &api) < 0)
                return EXIT_USAGE;
        r = p->list(&api, TAG, &l, &n, &err);
        if (r < 0) {
                fprintf(stderr, "%s\n", err);
                return EXIT_ERROR;
        }
        printf("%-12s %-24s %-10s %s\n", "ID", "NAME", "STATUS", "IP");
        for (size_t i = 0; i < n; i++)
                printf("%-12s %-24s %-10s %s\n", l[i].id, l[i].name, l[i].status, l[i].ip ?: "-");
        hosts_free(l, n);
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
        if (cloud_open(&a, &p, &api) < 0)
                return EXIT_USAGE;
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
                hosts_free(l, n);
                if (!id) {
                        fprintf(stderr, "No host tagged %s has IP %s.\n", TAG, a.ip);
                        return EXIT_ERROR;
                }
        } else if (!(id = strdup(a.id)))
                return EXIT_ERROR;
        r = p->destroy(&api, id, &err);
        if (r < 0) {
                fprintf(stderr, "%s\n", err);
                return EXIT_ERROR;
        }
        printf("Deleted host %s.\n", id);
        return EXIT_OK;
}
