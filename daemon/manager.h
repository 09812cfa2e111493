// SPDX-License-Identifier: LGPL-2.1-or-later
/* The manager owns everything one inletsd process runs: the event loop, the definition and
 * the role object (exit server or tunnel client). */
#pragma once

#include <systemd/sd-event.h>

#include "conf.h"

typedef struct Server Server;
typedef struct Client Client;

typedef struct Manager {
        sd_event *event;
        Definition *def;
        Server *server;
        Client *client;
        sd_event_source *sigterm, *sigint, *sighup;
        bool stopping;
} Manager;

int manager_new(Definition *def, Manager **ret);
Manager *manager_free(Manager *m);
DEFINE_TRIVIAL_CLEANUP_FUNC(Manager *, manager_free);
int manager_start(Manager *m);
int manager_run(Manager *m);
