// SPDX-License-Identifier: LGPL-2.1-or-later
/* inletsctl list: one line per running tunnel. */

#include <stdio.h>

#include "ctl.h"
#include "macro.h"

int verb_list(int argc, char *argv[]) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_strv_free_ char **names = NULL;
        _cleanup_(json_object_putp) json_object *arr = NULL;
        size_t n;

        if (ctl_bus(&bus) < 0 || ctl_running_names(bus, &names, &n) < 0)
                return EXIT_ERROR;
        if (arg.json)
                arr = json_object_new_array();
        else if (n > 0)
                printf("%-20s %-8s %-5s %-13s %s\n", "NAME", "ROLE", "MODE", "STATE", "ADDRESS");
        for (size_t i = 0; i < n; i++) {
                _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
                TunnelInfo t;
                if (ctl_tunnel_info(bus, names[i], &t, &error) < 0)
                        continue; /* went away meanwhile */
                if (arr)
                        json_object_array_add(arr, tunnel_info_json(&t));
                else
                        printf("%-20s %-8s %-5s %-13s %s\n", t.name, t.role, t.mode, t.state,
                               t.url && *t.url ? t.url : t.control);
                tunnel_info_done(&t);
        }
        if (arr)
                json_print(arr);
        else
                printf("%s%zu tunnel%s running.\n", n > 0 ? "\n" : "", n, n == 1 ? "" : "s");
        return EXIT_OK;
}
