// SPDX-License-Identifier: LGPL-2.1-or-later
/* The fileserver role: a directory over HTTP/1.1 with basic auth, to be exposed through a
 * tunnel client. */
#pragma once

#include "manager.h"

typedef struct FileServer FileServer;

int fileserver_new(Manager *m, FileServer **ret);
FileServer *fileserver_free(FileServer *f);
int fileserver_start(FileServer *f);
void fileserver_stop(FileServer *f);
void fileserver_get_counters(FileServer *f, TunnelCounters *ret);
