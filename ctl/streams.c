// SPDX-License-Identifier: LGPL-2.1-or-later
/* inletsctl streams NAME: the live tunneled connections. */

#include <inttypes.h>
#include <stdio.h>

#include "ctl.h"
#include "macro.h"

int verb_streams(int argc, char *argv[]) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_free_ char *dest = NULL;
        _cleanup_(json_object_putp) json_object *arr = NULL;
        const char *client, *peer;
        uint64_t in, out, age;
        uint32_t id;
        uint16_t port;
        unsigned n = 0;
        int r;

        if (argc != 2) {
                fprintf(stderr, "Usage: inletsctl streams NAME\n");
                return EXIT_USAGE;
        }
        if (ctl_bus(&bus) < 0 || !(dest = ctl_bus_name(argv[1])))
                return EXIT_ERROR;
        r = sd_bus_call_method(bus, dest, "/io/inletsd/Tunnel", "io.inletsd.Tunnel1", "ListStreams", &error, &reply,
                               NULL);
        if (r < 0)
                return ctl_error(argv[1], &error, r);
        r = sd_bus_message_enter_container(reply, 'a', "(ussqttt)");
        if (arg.json)
                arr = json_object_new_array();
        while (r >= 0 && (r = sd_bus_message_read(reply, "(ussqttt)", &id, &client, &peer, &port, &in, &out, &age)) > 0) {
                if (arr) {
                        json_object *o = json_object_new_object();
                        json_object_object_add(o, "id", json_object_new_int64(id));
                        json_object_object_add(o, "client", json_object_new_string(client));
                        json_object_object_add(o, "peer", json_object_new_string(peer));
                        json_object_object_add(o, "port", json_object_new_int(port));
                        json_object_object_add(o, "bytes_in", json_object_new_int64((int64_t) in));
                        json_object_object_add(o, "bytes_out", json_object_new_int64((int64_t) out));
                        json_object_object_add(o, "age_usec", json_object_new_int64((int64_t) age));
                        json_object_array_add(arr, o);
                } else {
                        char bi[16], bo[16], a[32];
                        if (n == 0)
                                printf("%-6s %-20s %-24s %-6s %-11s %-11s %s\n", "ID", "CLIENT", "PEER", "PORT", "IN",
                                       "OUT", "AGE");
                        format_bytes(in, bi);
                        format_bytes(out, bo);
                        format_age(age, a);
                        printf("%-6" PRIu32 " %-20s %-24s %-6u %-11s %-11s %s\n", id, *client ? client : "-", peer,
                               port, bi, bo, a);
                }
                n++;
        }
        if (r < 0) {
                fprintf(stderr, "Bad reply from %s: %s\n", argv[1], strerror(-r));
                return EXIT_ERROR;
        }
        if (arr)
                json_print(arr);
        else
                printf("%s%u stream%s.\n", n ? "\n" : "", n, n == 1 ? "" : "s");
        return EXIT_OK;
}
