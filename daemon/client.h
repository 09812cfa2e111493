// SPDX-License-Identifier: LGPL-2.1-or-later
/* The tunnel client: dials the exit server, keeps the session up, and connects each stream
 * to its upstream. */
#pragma once

#include <stdio.h>

#include "macro.h"
#include "histogram.h"
#include "handover.h"
#include "manager.h"

int client_new(Manager *m, Client **ret);
Client *client_free(Client *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(Client *, client_free);
int client_start(Client *c);
void client_stop(Client *c);
/* Ask the server for no new streams and never reconnect; streams carry on. */
void client_drain(Client *c);

/* Restarts through systemd's fd store, as server_handover() and the rest (server.h): the
 * session's upstream sockets and state go to the next process, which resumes the session. */
int client_handover(Client *c, FILE *f, int **fds, size_t *n_fds);
void client_handover_done(Client *c);
int client_restore(Client *c, HandoverReader *rd, int *fds, size_t n_fds);

int client_reload(Client *c, const Definition *new_def, char **ret_error);
void client_reloaded(Client *c, const Definition *old_def);

void client_get_counters(Client *c, TunnelCounters *ret);
/* TCP mode: upstream connections made (by the time they took) and those that failed. */
/* Sessions established since start, and the age of the current one (0: not connected). */
void client_get_session(Client *c, uint64_t *ret_sessions, uint64_t *ret_age_usec);
/* Streams and requests this client's own AllowFrom=/DenyFrom= refused. */
uint64_t client_refused(Client *c);
void client_get_resume(Client *c, ResumeCounters *ret);
void client_foreach_stream(Client *c, void (*f)(const StreamInfo *i, void *userdata), void *userdata);
