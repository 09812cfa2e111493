// SPDX-License-Identifier: LGPL-2.1-or-later
/* LocalForward= on the tunnel client: local listening sockets whose connections the exit
 * server carries on to a host:port it dials (client-forward.c). */
#pragma once

#include <systemd/sd-event.h>

#include "conf.h"
#include "mux.h"

typedef struct ClientForwards ClientForwards;

/* Sends a "forward" control message on the session (and notes that its answer is the
 * forwards'); < 0 when it cannot. */
typedef int (*forward_send_t)(void *userdata, const char *message);

int client_forwards_new(sd_event *e, forward_send_t send, void *userdata, ClientForwards **ret);
ClientForwards *client_forwards_free(ClientForwards *f);
/* Listens on d's LocalForward= addresses (those already listening keep their sockets). On
 * failure nothing changes and *ret_error says why. */
int client_forwards_apply(ClientForwards *f, const Definition *d, char **ret_error);
/* A listening socket systemd passed as "forward-PORT" (fd taken over): the LocalForward= with
 * that address uses it instead of binding its own. */
int client_forwards_adopt(ClientForwards *f, uint16_t port, int fd);
/* The session connected (mux) or ended (NULL: connections waiting for it are closed). */
void client_forwards_session(ClientForwards *f, Mux *mux);
/* A CONNECT stream from the server: true when it was a forward stream (accepted or refused
 * here), false for a public connection's. */
bool client_forwards_stream(ClientForwards *f, MuxStream *s, const char *authority);
/* The answer to the oldest "forward" not answered yet ("ok forward ID", "error forward ID
 * REASON", or an older server's "error unknown command"). */
void client_forwards_answer(ClientForwards *f, const char *message);
/* "notice forward ID REASON" (after "notice forward "): the dial failed. */
void client_forwards_notice(ClientForwards *f, const char *rest);
