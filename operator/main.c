// SPDX-License-Identifier: LGPL-2.1-or-later
/* inlets-operator: see operator.h and man/inlets-operator.8. */

#include <curl/curl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>

#include "fileio.h"
#include "inlets-args.h"
#include "log.h"
#include "macro.h"
#include "operator.h"
#include "parse-util.h"
#include "string-util.h"
#include "time-util.h"
#include "version.h"

static void help(void) {
        printf("Usage: inlets-operator [--provider P --access-token-file F] [OPTIONS]\n\n"
               "Gives Services of type LoadBalancer a public IP: an inletsd exit server on a cloud host, or\n"
               "ports on a shared one an ExitServer resource names (annotation " EXIT_SERVER_ANNOTATION "),\n"
               "and a tunnel client Deployment beside the Service, recorded in a Tunnel resource.\n\n"
               "  --provider P             digitalocean, hetzner, vultr, linode, scaleway, ec2, gce or azure (none:\n"
               "                           shared exit servers only)\n"
               "  --access-token-file F    the cloud API token (never on the command line; ec2: a credentials\n"
               "                           file as ~/.aws/credentials; gce: a service account's JSON key;\n"
               "                           azure: a service principal's JSON, as az ad sp create-for-rbac\n"
               "                           --json-auth writes it)\n"
               "  --region R, --size S, --image I   host defaults of the provider, overridden\n"
               "  --api-url URL            the provider's API (default: its public one)\n"
               "  --project ID             the project hosts belong to (scaleway: default $SCW_DEFAULT_PROJECT_ID;\n"
               "                           gce: default the key's; azure: the subscription, default the file's)\n"
               "  --client-image IMAGE     image of the tunnel client (default: " INLETSD_DEFAULT_IMAGE ",\n"
               "                           what tools/image builds; push it and name where it is)\n"
               "  --client-resources JSON  the client containers' resources, e.g.\n"
               "                           '{\"requests\":{\"cpu\":\"10m\",\"memory\":\"16Mi\"},\"limits\":{\"memory\":\"64Mi\"}}'\n"
               "  --max-client-memory Q    the client containers' memory limit (e.g. 64Mi)\n"
               "  --package-url URL        the inletsd .deb hosts install (default: the distribution's)\n"
               "  --annotated-only         manage only Services annotated dev.inlets.manage=true\n"
               "  --kubeconfig FILE        run outside the cluster (default: the pod's service account)\n"
               "  --context NAME           a kubeconfig context other than the current one\n"
               "  --control-port PORT      the exit servers' control port (default 8123)\n"
               "  --poll-interval TIME     how often a provisioning host is checked (default 5s; 500ms works)\n"
               "  --resync-interval TIME   how often everything is reconciled anyway (default 5min)\n"
               "  --watch-timeout TIME     how long one watch request lasts before it is resumed (default 290s;\n"
               "                           lower it behind proxies that cut long requests)\n"
               "  -v, --verbose            debug logging\n"
               "  -h, --help, --version\n");
}

static int on_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        log_info("Received %s, exiting.", strsignal((int) si->ssi_signo));
        return sd_event_exit(sd_event_source_get_event(s), 0);
}

static int add_signal(sd_event *e, int sig, const char *description) {
        _cleanup_(sd_event_source_unrefp) sd_event_source *s = NULL;
        int r;

        r = sd_event_add_signal(e, &s, sig, on_signal, NULL);
        if (r < 0)
                return r;
        r = sd_event_source_set_description(s, description);
        if (r < 0)
                return r;
        /* the loop owns it, as if added without a reference of ours */
        return sd_event_source_set_floating(s, true);
}

/* A Kubernetes quantity as the API server writes it back: digits, an optional fraction, an
 * optional suffix (m, k, M, G, Ki, Mi, Gi, ...). */
static bool quantity_ok(const char *q) {
        size_t n = strspn(q, "0123456789");
        if (n == 0)
                return false;
        if (q[n] == '.') {
                size_t f = strspn(q + n + 1, "0123456789");
                if (f == 0)
                        return false;
                n += 1 + f;
        }
        return strlen(q + n) <= 2 && strspn(q + n, "mkMGTPEi") == strlen(q + n);
}

/* --client-resources '{"requests":{"cpu":"10m","memory":"16Mi"},"limits":{"memory":"64Mi"}}'
 * (the container's resources), --max-client-memory 64Mi (its limits.memory). */
static int client_resources_set(Options *o, bool max_memory, const char *arg) {
        json_object *r = NULL, *lim;

        if (max_memory) {
                if (!quantity_ok(arg)) {
                        fprintf(stderr, "--max-client-memory: expected a quantity such as 64Mi, got '%s'\n", arg);
                        return -EINVAL;
                }
                if (!o->client_resources)
                        o->client_resources = json_object_new_object();
                if (!json_object_object_get_ex(o->client_resources, "limits", &lim)) {
                        lim = json_object_new_object();
                        json_object_object_add(o->client_resources, "limits", lim);
                }
                json_object_object_add(lim, "memory", json_object_new_string(arg));
                return 0;
        }
        r = json_tokener_parse(arg);
        if (!r || !json_object_is_type(r, json_type_object))
                goto bad;
        json_object_object_foreach(r, k, v) {
                if ((!streq(k, "requests") && !streq(k, "limits")) || !json_object_is_type(v, json_type_object))
                        goto bad;
                json_object_object_foreach(v, name, q)
                        if ((!streq(name, "cpu") && !streq(name, "memory") && !streq(name, "ephemeral-storage")) ||
                            !json_object_is_type(q, json_type_string) || !quantity_ok(json_object_get_string(q)))
                                goto bad;
        }
        /* what --max-client-memory said before stays */
        if (o->client_resources && json_object_object_get_ex(o->client_resources, "limits", &lim) &&
            json_object_object_get_ex(lim, "memory", NULL)) {
                json_object *l2;
                if (!json_object_object_get_ex(r, "limits", &l2)) {
                        l2 = json_object_new_object();
                        json_object_object_add(r, "limits", l2);
                }
                json_object_object_add(l2, "memory", json_object_get(json_object_object_get(lim, "memory")));
        }
        json_object_put(o->client_resources);
        o->client_resources = r;
        return 0;
bad:
        json_object_put(r);
        fprintf(stderr, "--client-resources: expected JSON such as {\"requests\":{\"cpu\":\"10m\",\"memory\":\"16Mi\"},"
                        "\"limits\":{\"memory\":\"64Mi\"}} (cpu, memory, ephemeral-storage; quantities as 10m, 64Mi)\n");
        return -EINVAL;
}

static int parse_args(int argc, char *argv[], Options *o) {
        enum { OPT_CLIENT_IMAGE = _CLOUD_OPT_MAX, OPT_PACKAGE_URL, OPT_ANNOTATED, OPT_KUBECONFIG,
               OPT_CONTEXT, OPT_CONTROL_PORT, OPT_POLL, OPT_RESYNC, OPT_VERSION, OPT_WATCH_TIMEOUT,
               OPT_CLIENT_RESOURCES, OPT_MAX_CLIENT_MEMORY };
        static const struct option options[] = {
                CLOUD_OPTIONS, /* first: the messages below index this table by option */
                { "client-image", required_argument, NULL, OPT_CLIENT_IMAGE },
                { "package-url", required_argument, NULL, OPT_PACKAGE_URL },
                { "annotated-only", optional_argument, NULL, OPT_ANNOTATED },
                { "kubeconfig", required_argument, NULL, OPT_KUBECONFIG },
                { "context", required_argument, NULL, OPT_CONTEXT },
                { "control-port", required_argument, NULL, OPT_CONTROL_PORT },
                { "poll-interval", required_argument, NULL, OPT_POLL },
                { "resync-interval", required_argument, NULL, OPT_RESYNC },
                { "verbose", no_argument, NULL, 'v' },
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, OPT_VERSION },
                { "watch-timeout", required_argument, NULL, OPT_WATCH_TIMEOUT },
                { "client-resources", required_argument, NULL, OPT_CLIENT_RESOURCES },
                { "max-client-memory", required_argument, NULL, OPT_MAX_CLIENT_MEMORY },
                {}
        };
        int c, b;

        while ((c = getopt_long(argc, argv, "vh", options, NULL)) >= 0) {
                if (cloud_flags_parse(&o->cloud, c, optarg))
                        continue;
                switch (c) {
                case OPT_CLIENT_IMAGE: o->client_image = optarg; break;
                case OPT_PACKAGE_URL: o->package_url = optarg; break;
                case OPT_KUBECONFIG: o->kubeconfig = optarg; break;
                case OPT_CONTEXT: o->context = optarg; break;
                case OPT_ANNOTATED:
                        b = optarg ? parse_boolean(optarg) : 1;
                        if (b < 0) {
                                fprintf(stderr, "--annotated-only: expected a boolean, got '%s'\n", optarg);
                                return -EINVAL;
                        }
                        o->annotated_only = b;
                        break;
                case OPT_CONTROL_PORT:
                        if (parse_port(optarg, &o->control_port) < 0) {
                                fprintf(stderr, "--control-port: expected a port, got '%s'\n", optarg);
                                return -EINVAL;
                        }
                        break;
                case OPT_POLL:
                case OPT_RESYNC:
                case OPT_WATCH_TIMEOUT:
                        if (parse_sec(optarg, c == OPT_POLL ? &o->poll_usec : c == OPT_RESYNC ? &o->resync_usec
                                                                                           : &o->watch_timeout_usec) < 0) {
                                fprintf(stderr, "--%s: expected seconds, got '%s'\n", options[c - 0x100].name, optarg);
                                return -EINVAL;
                        }
                        break;
                case OPT_CLIENT_RESOURCES:
                case OPT_MAX_CLIENT_MEMORY:
                        if (client_resources_set(o, c == OPT_MAX_CLIENT_MEMORY, optarg) < 0)
                                return -EINVAL;
                        break;
                case 'v': log_max_level = LOG_DEBUG; break;
                case 'h': help(); exit(EXIT_SUCCESS);
                case OPT_VERSION: printf("inlets-operator %s (%s)\n", PROJECT_VERSION, GIT_REVISION); exit(EXIT_SUCCESS);
                default: return -EINVAL;
                }
        }
        if (optind < argc) {
                fprintf(stderr, "Unexpected argument '%s'.\n", argv[optind]);
                return -EINVAL;
        }
        if (!o->cloud.provider != !o->cloud.token_file) {
                fprintf(stderr, "--provider and --access-token-file go together (see --help).\n");
                return -EINVAL;
        }
        return 0;
}

int main(int argc, char *argv[]) {
        Operator o = { .opt = { .client_image = INLETSD_DEFAULT_IMAGE, .control_port = 8123,
                                .poll_usec = 5 * USEC_PER_SEC, .resync_usec = 300 * USEC_PER_SEC } };
        _cleanup_(erase_and_freep) char *token = NULL;
        _cleanup_free_ char *err = NULL;
        sigset_t ss;
        int r;

        log_set_tunnel("inlets-operator");
        if (parse_args(argc, argv, &o.opt) < 0)
                return 2;
        if (!o.opt.cloud.provider)
                goto no_cloud;
        o.provider = cloud_provider_find(o.opt.cloud.provider);
        if (!o.provider) {
                log_error("Unknown provider '%s' (digitalocean, hetzner, vultr, linode, scaleway, ec2, gce, azure).",
                          o.opt.cloud.provider);
                return 2;
        }
        /* a provider with credentials of its own reads the file itself (AWS: a credentials file) */
        r = o.provider->credentials ? 0 : read_full_file(o.opt.cloud.token_file, 4096, &token, NULL);
        if (r < 0 || (token && !*strstrip(token))) {
                log_error("Cannot read the API token from %s: %s", o.opt.cloud.token_file,
                          r < 0 ? strerror(-r) : "empty");
                return 1;
        }
        /* one try per call: the reconcile loop retries, and must not sleep */
        r = cloud_api_init(&o.cloud, o.provider, &o.opt.cloud, TAKE_PTR(token), true, 20, 0, &err);
        if (r < 0) {
                log_error("%s.", err ?: strerror(-r));
                return 1;
        }
no_cloud:
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
                return log_oom(), 1;
        r = o.opt.kubeconfig ? kube_new_from_kubeconfig(o.opt.kubeconfig, o.opt.context, &o.kube, &err)
                             : kube_new_in_cluster(KUBE_SA_DIR, &o.kube, &err);
        if (r < 0) {
                log_error("%s", err ?: strerror(-r));
                return 1;
        }
        if (o.opt.watch_timeout_usec > 0)
                kube_set_watch_timeout(o.kube, (unsigned) MAX(o.opt.watch_timeout_usec / USEC_PER_SEC, (uint64_t) 1));
        sigemptyset(&ss);
        sigaddset(&ss, SIGTERM);
        sigaddset(&ss, SIGINT);
        (void) sigprocmask(SIG_BLOCK, &ss, NULL);
        (void) signal(SIGPIPE, SIG_IGN);
        r = sd_event_default(&o.event);
        if (r >= 0)
                r = add_signal(o.event, SIGTERM, "operator-sigterm");
        if (r >= 0)
                r = add_signal(o.event, SIGINT, "operator-sigint");
        if (r >= 0)
                r = operator_start(&o);
        if (r < 0) {
                log_error_errno(r, "Failed to start: %m");
                return 1;
        }
        log_info("inlets-operator %s: %s, %s%s, %s Services.", PROJECT_VERSION, kube_server(o.kube),
                 o.provider ? "provider " : "no cloud provider (shared exit servers only)",
                 o.provider ? o.provider->name : "", o.opt.annotated_only ? "annotated LoadBalancer" : "all LoadBalancer");
        r = sd_event_loop(o.event);
        /* in this order: the watches' curl handles, then what they fed */
        o.kube = kube_free(o.kube);
        operator_done(&o);
        cloud_api_done(&o.cloud);
        json_object_put(o.opt.client_resources);
        o.event = sd_event_unref(o.event);
        curl_global_cleanup();
        return r < 0 ? 1 : 0;
}
