// SPDX-License-Identifier: LGPL-2.1-or-later
/* inletsctl reload NAME: the daemon re-reads its definition; a bad file changes nothing.
 * inletsctl renew NAME: a new ACME certificate now. */

#include <stdio.h>

#include "ctl.h"
#include "macro.h"

/* A method without arguments on tunnel NAME: an exit code. */
static int call_simple(int argc, char *argv[], const char *verb, const char *method) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_free_ char *dest = NULL;
        int r;

        if (argc != 2) {
                fprintf(stderr, "Usage: inletsctl %s NAME\n", verb);
                return EXIT_USAGE;
        }
        if (ctl_bus(&bus) < 0 || !(dest = ctl_bus_name(argv[1])))
                return EXIT_ERROR;
        r = sd_bus_call_method(bus, dest, "/io/inletsd/Tunnel", "io.inletsd.Tunnel1", method, &error, NULL, NULL);
        if (r < 0)
                return ctl_error(argv[1], &error, r);
        return EXIT_OK;
}

int verb_reload(int argc, char *argv[]) {
        int r = call_simple(argc, argv, "reload", "Reload");
        if (r == EXIT_OK)
                printf("Reloaded %s.\n", argv[1]);
        return r;
}

/* The exit server asks its ACME CA for a new certificate now; the result shows in
 * `inletsctl status` (Cert:, LastError:) and the journal. */
int verb_renew(int argc, char *argv[]) {
        int r = call_simple(argc, argv, "renew", "RenewCertificate");
        if (r == EXIT_OK)
                printf("Renewal of %s's certificate started; see inletsctl status %s.\n", argv[1], argv[1]);
        return r;
}
