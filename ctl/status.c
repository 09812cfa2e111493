// SPDX-License-Identifier: LGPL-2.1-or-later
/* inletsctl status [NAME...]: a block per tunnel, shaped like systemctl status. */

#include <stdio.h>
#include <unistd.h>

#include "ctl.h"
#include "macro.h"
#include "string-util.h"
#include "time-util.h"

static const char *dot_color(const char *state) {
        if (streq(state, "listening") || streq(state, "connected"))
                return "\033[0;1;32m";
        if (streq(state, "stopping"))
                return "\033[0;1;31m";
        return "\033[0;1;33m";
}

static void print_status(const TunnelInfo *t, bool color) {
        char ts[64], age[32], in[16], out[16];
        bool server = t->role && streq(t->role, "server");
        uint64_t now = realtime_usec();

        printf("%s●%s %s - inletsd %s (%s)\n", color ? dot_color(t->state) : "", color ? "\033[0m" : "", t->name,
               server ? "exit server" : "tunnel client", t->mode);
        format_timestamp(t->started_at, ts);
        format_age(now > t->started_at ? now - t->started_at : 0, age);
        printf("     State: %s%s%s (running since %s; %s ago)\n", color ? dot_color(t->state) : "", t->state,
               color ? "\033[0m" : "", ts, age);
        printf("    Config: %s\n", t->config ?: "-");
        if (server)
                printf("   Control: %s\n", t->control ?: "-");
        else
                printf("       URL: %s\n", t->url ?: "-");
        printf("     Ports:");
        if (!server && t->n_upstreams > 0)
                for (size_t i = 0; i < t->n_upstreams; i++) {
                        const char *eq = strchr(t->upstreams[i], '=');
                        printf(" %.*s->%s", eq ? (int) (eq - t->upstreams[i]) : 0, t->upstreams[i],
                               eq ? eq + 1 : t->upstreams[i]);
                }
        else
                for (size_t i = 0; i < t->n_ports; i++)
                        printf(" %u", t->ports[i]);
        printf("%s\n", t->n_ports == 0 ? " (none)" : "");
        if (server) {
                printf("   Clients: %zu\n", t->n_clients);
                for (size_t i = 0; i < t->n_clients; i++) {
                        const ClientRow *c = &t->clients[i];
                        format_age(now > c->since ? now - c->since : 0, age);
                        format_bytes(c->bytes_in, in);
                        format_bytes(c->bytes_out, out);
                        printf("            %s from %s, for %s, %s in, %s out, %u stream%s\n", c->id ?: "-", c->address ?: "-", age,
                               in, out, c->streams, c->streams == 1 ? "" : "s");
                }
        }
        format_bytes(t->bytes_in, in);
        format_bytes(t->bytes_out, out);
        printf("   Streams: %u active, %" PRIu64 " total\n", t->active_streams, t->total_streams);
        printf("   Traffic: %s in, %s out\n", in, out);
        if (t->refused_allow > 0 || t->refused_control > 0 || t->refused_proxy > 0 || t->refused_client > 0) {
                const char *sep = "";
                printf("   Refused:");
                if (t->refused_allow > 0) {
                        printf(" %" PRIu64 " (allow list)", t->refused_allow);
                        sep = ",";
                }
                if (t->refused_control > 0) {
                        printf("%s %" PRIu64 " (control port)", sep, t->refused_control);
                        sep = ",";
                }
                if (t->refused_proxy > 0) {
                        printf("%s %" PRIu64 " (no valid PROXY header)", sep, t->refused_proxy);
                        sep = ",";
                }
                if (t->refused_client > 0)
                        printf("%s %" PRIu64 " (a client's own lists)", sep, t->refused_client);
                putchar('\n');
        }
        if (t->has_resume && (t->resume[0] > 0 || t->resume[1] > 0 || t->resume[4] > 0)) {
                char re[32];
                format_bytes(t->resume[3], re);
                printf("   Resumed: %" PRIu64 " session%s, %" PRIu64 " connection%s (%s sent again)", t->resume[1],
                       t->resume[1] == 1 ? "" : "s", t->resume[2], t->resume[2] == 1 ? "" : "s", re);
                if (t->resume[0] > 0)
                        printf("; %" PRIu64 " held now", t->resume[0]);
                if (t->resume[4] > 0)
                        printf("; %" PRIu64 " not resumed in time", t->resume[4]);
                putchar('\n');
        }
        if (t->has_udp && (t->n_udp_ports > 0 || t->udp[1] > 0)) {
                uint64_t dropped = t->udp[6] + t->udp[7] + t->udp[8] + t->udp[9];
                printf("       UDP: ports");
                for (size_t i = 0; i < t->n_udp_ports; i++)
                        printf(" %u", t->udp_ports[i]);
                if (t->n_udp_ports == 0)
                        printf(" none");
                printf("; %" PRIu64 " flow%s (%" PRIu64 " total), %" PRIu64 " datagrams in, %" PRIu64 " out", t->udp[0],
                       t->udp[0] == 1 ? "" : "s", t->udp[1], t->udp[2], t->udp[3]);
                if (t->udp[10] > 0)
                        printf(", %" PRIu64 " flows evicted", t->udp[10]);
                if (dropped > 0)
                        printf(", %" PRIu64 " dropped (%" PRIu64 " full, %" PRIu64 " size, %" PRIu64 " no flow, %" PRIu64
                               " error)", dropped, t->udp[6], t->udp[7], t->udp[8], t->udp[9]);
                putchar('\n');
        }
        if (t->n_cert_names > 0) {
                char na[64], ra[64];
                format_timestamp(t->cert_not_after, na);
                format_timestamp(t->cert_renew_at, ra);
                printf("      Cert:");
                for (size_t i = 0; i < t->n_cert_names; i++)
                        printf(" %s", t->cert_names[i]);
                printf("; expires %s, renews from %s\n", na, ra);
        }
        if (t->last_error && *t->last_error)
                printf(" LastError: %s\n", t->last_error);
}

/* status --url: what the exit server at arg.url says of itself. */
static int remote_status(int argc, bool color) {
        _cleanup_(json_object_putp) json_object *arr = NULL;
        TunnelInfo *t = NULL;
        size_t n = 0;
        int r;

        if (argc > 1) {
                fprintf(stderr, "status --url takes no NAME: the server shows its own tunnel\n");
                return EXIT_USAGE;
        }
        r = ctl_remote_status(&t, &n);
        if (r != EXIT_OK)
                return r;
        if (arg.json)
                arr = json_object_new_array();
        for (size_t i = 0; i < n; i++) {
                if (arr)
                        json_object_array_add(arr, tunnel_info_json(&t[i]));
                else {
                        if (i > 0)
                                putchar('\n');
                        print_status(&t[i], color);
                }
                tunnel_info_done(&t[i]);
        }
        free(t);
        if (arr)
                json_print(arr);
        return EXIT_OK;
}

int verb_status(int argc, char *argv[]) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_strv_free_ char **names = NULL;
        _cleanup_(json_object_putp) json_object *arr = NULL;
        bool color = isatty(STDOUT_FILENO) && !getenv("NO_COLOR");
        size_t n = 0;
        int r, ret = EXIT_OK;

        if (arg.url)
                return remote_status(argc, color);
        if (arg.token_file || arg.fingerprint || arg.tls_ca) {
                fprintf(stderr, "--token-file, --tls-ca and --fingerprint go with status --url\n");
                return EXIT_USAGE;
        }
        if (ctl_bus(&bus) < 0)
                return EXIT_ERROR;
        if (argc > 1) {
                for (int i = 1; i < argc; i++)
                        if (strv_push(&names, &n, strdup(argv[i])) < 0)
                                return EXIT_ERROR;
        } else if (ctl_running_names(bus, &names, &n) < 0)
                return EXIT_ERROR;
        if (arg.json)
                arr = json_object_new_array();
        for (size_t i = 0; i < n; i++) {
                _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
                TunnelInfo t;
                r = ctl_tunnel_info(bus, names[i], &t, &error);
                if (r < 0) {
                        int e = ctl_error(names[i], &error, r);
                        ret = ret == EXIT_OK ? e : ret;
                        continue;
                }
                if (arr)
                        json_object_array_add(arr, tunnel_info_json(&t));
                else {
                        if (i > 0)
                                putchar('\n');
                        print_status(&t, color);
                }
                tunnel_info_done(&t);
        }
        if (arr)
                json_print(arr);
        return ret;
}
