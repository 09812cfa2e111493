// SPDX-License-Identifier: LGPL-2.1-or-later
/* The D-Bus API: io.inletsd.Tunnel1 at /io/inletsd/Tunnel on io.inletsd.Tunnel.<label>. */
#pragma once

#include "manager.h"
#include "tunnel-info.h"

#define BUS_PATH "/io/inletsd/Tunnel"
#define BUS_INTERFACE "io.inletsd.Tunnel1"
#define BUS_NAME_PREFIX "io.inletsd.Tunnel."
#define BUS_ERROR_INVALID_CONFIG "io.inletsd.Error.InvalidConfig"
#define BUS_ERROR_NO_SUCH_CLIENT "io.inletsd.Error.NoSuchClient"

int bus_setup(Manager *m);
/* What the properties say, in one struct (GET /status on an exit server's control port). */
int bus_tunnel_info(Manager *m, TunnelInfo *ret);
