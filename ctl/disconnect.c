// SPDX-License-Identifier: LGPL-2.1-or-later
/* inletsctl disconnect NAME CLIENT: drop one client of an exit server. */

#include <stdio.h>

#include "ctl.h"
#include "macro.h"

int verb_disconnect(int argc, char *argv[]) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_free_ char *dest = NULL;
        int r;

        if (argc != 3) {
                fprintf(stderr, "Usage: inletsctl disconnect NAME CLIENT\n");
                return EXIT_USAGE;
        }
        if (ctl_bus(&bus) < 0 || !(dest = ctl_bus_name(argv[1])))
                return EXIT_ERROR;
        r = sd_bus_call_method(bus, dest, "/io/inletsd/Tunnel", "io.inletsd.Tunnel1", "DisconnectClient", &error,
                               NULL, "s", argv[2]);
        if (r < 0)
                return ctl_error(argv[1], &error, r);
        printf("Disconnected client %s from %s.\n", argv[2], argv[1]);
        return EXIT_OK;
}
