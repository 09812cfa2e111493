// SPDX-License-Identifier: LGPL-2.1-or-later
/* The exit server: accepts tunnel clients on the control port and, in TCP mode, the public
 * connections on the ports they offer. */
#pragma once

#include "manager.h"

int server_new(Manager *m, Server **ret);
Server *server_free(Server *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(Server *, server_free);
int server_start(Server *s);
void server_stop(Server *s);
