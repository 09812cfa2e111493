// SPDX-License-Identifier: LGPL-2.1-or-later
/* inletsctl reload NAME: the daemon re-reads its definition; a bad file changes nothing. */

#include <stdio.h>

#include "ctl.h"

int verb_reload(int argc, char *argv[]) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_free_ char *dest = NULL;
        int r;

        if (argc != 2) {
                fprintf(stderr, "Usage: inletsctl reload NAME\n");
                return EXIT_USAGE;
        }
        if (ctl_bus(&bus) < 0 || !(dest = ctl_bus_name(argv[1])))
                return EXIT_ERROR;
        r = sd_bus_call_method(bus, dest, "/io/inletsd/Tunnel", "io.inletsd.Tunnel1", "Reload", &error, NULL, NULL);
        if (r < 0)
                return ctl_error(argv[1], &error, r);
        printf("Reloaded %s.\n", argv[1]);
        return EXIT_OK;
}
