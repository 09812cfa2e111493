// SPDX-License-Identifier: LGPL-2.1-or-later
/* The exit server: accepts tunnel clients on the control port and, in TCP mode, the public
 * connections on the ports they offer. */
#pragma once

#include <stdio.h>

#include "handover.h"
#include "macro.h"
#include "manager.h"

int server_new(Manager *m, Server **ret);
Server *server_free(Server *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(Server *, server_free);
int server_start(Server *s);
void server_stop(Server *s);
/* Stop accepting (systemd's sockets keep queueing for the next process); streams carry on. */
void server_drain(Server *s);

/* Restarts through systemd's file descriptor store (server-handover.c): ends every resumable
 * session as a lost connection and writes them to f, their sockets appended to *fds (the
 * number of sessions written); once those were passed on, server_handover_done() closes ours
 * without resetting them. At start, server_restore() holds the previous process's sessions
 * (rd, past the first line, and the sockets by index in fds, which it takes: set to -1). */
int server_handover(Server *s, FILE *f, int **fds, size_t *n_fds);
void server_handover_done(Server *s);
int server_restore(Server *s, HandoverReader *rd, int *fds, size_t n_fds);

/* Reload in two steps: check and prepare with the new definition (nothing changes on
 * failure), then, once the manager holds the new definition, apply. */
int server_reload(Server *s, const Definition *new_def, char **ret_error);
void server_reloaded(Server *s, const Definition *old_def);

void server_get_counters(Server *s, TunnelCounters *ret);
/* Connections to the control port that did not become sessions, by reason: TLS, timeout,
 * token, request, busy, closed (the order of metrics.c's labels). */
void server_get_handshake_failures(Server *s, uint64_t ret[static 6]);
/* Tunnel client sessions established since start, and ended by reason (names: ret_names). */
#define SERVER_END_REASONS 8
void server_get_sessions(Server *s, uint64_t *ret_connects, uint64_t ret_disconnects[static SERVER_END_REASONS],
                         const char *const **ret_names);
/* When the certificates in service expire (Unix time; 0: none): the control port's, and the
 * HTTPS port's (HTTP mode with HTTPSListen=). */
void server_get_certificates(Server *s, uint64_t *ret_control, uint64_t *ret_https);
void server_get_refused(Server *s, RefusedCounters *ret);
void server_get_resume(Server *s, ResumeCounters *ret);
void server_foreach_client(Server *s, void (*f)(const PeerInfo *p, void *userdata), void *userdata);
void server_foreach_stream(Server *s, void (*f)(const StreamInfo *i, void *userdata), void *userdata);
int server_disconnect_client(Server *s, const char *id);
void server_status_summary(Server *s, size_t *ret_clients, char *ports, size_t size);
/* HTTP mode with ACMEDomain=: the certificate manager, else NULL. For manager_acme() only:
 * the rest of the daemon asks the manager. */
AcmeCert *server_acme(Server *s);
