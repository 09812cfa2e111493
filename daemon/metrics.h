// SPDX-License-Identifier: LGPL-2.1-or-later
/* MetricsListen=: Prometheus metrics over plain HTTP, GET /metrics only, in the text format
 * 0.0.4 or OpenMetrics 1.0 (by Accept). The numbers are the ones D-Bus shows, read at each
 * scrape from the same counters; no secret is ever a label. */
#pragma once

#include "manager.h"
#include "socket-util.h"

typedef struct Metrics Metrics;

/* Listens on address (a socket systemd passed when fd >= 0, taken). */
int metrics_new(Manager *m, const SocketAddress *address, int fd, Metrics **ret);
Metrics *metrics_free(Metrics *x);
DEFINE_TRIVIAL_CLEANUP_FUNC(Metrics *, metrics_free);

/* The exposition text for m into *ret (its length in *ret_len): OpenMetrics when openmetrics. */
int metrics_render(Manager *m, bool openmetrics, char **ret, size_t *ret_len);
