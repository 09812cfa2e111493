// SPDX-License-Identifier: LGPL-2.1-or-later
/* The tunnel client: dials the exit server, keeps the session up, and connects each stream
 * to its upstream. */
#pragma once

#include "manager.h"

int client_new(Manager *m, Client **ret);
Client *client_free(Client *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(Client *, client_free);
int client_start(Client *c);
void client_stop(Client *c);
