// SPDX-License-Identifier: LGPL-2.1-or-later
/* Resuming a tunnel session (docs/protocol.md, "Resuming a session"): the upgrade's
 * X-Inlets-Resume field, the session's resumption key and the proof a reconnecting client
 * gives with it. The key binds to the TLS connection it was made on (RFC 5705/8446 exporter)
 * and to the token; the proof binds to the new connection, so it is good on that one only. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "tls.h"

#define RESUME_ID_BYTES 16
#define RESUME_ID_HEX (RESUME_ID_BYTES * 2)
/* X-Inlets-Resume's version: 3 acknowledges bytes as they are written to the socket (2 as they
 * came, which let a resumed stream hold a window beyond its own); 2 acknowledged stream ends
 * ("ack KEY:LENGTH+1"), 1 did not. */
#define RESUME_VERSION "3"
#define RESUME_PROOF_HEX 64

/* The client's X-Inlets-Resume: "1" (it can resume), or "1 ID PROOF" (it asks to resume session
 * ID). */
typedef struct ResumeRequest {
        bool can;
        bool asks;
        char id[RESUME_ID_HEX + 1];
        char proof[RESUME_PROOF_HEX + 1];
} ResumeRequest;

/* -EBADMSG for anything else (lower-case hex only). */
int resume_request_parse(const char *v, ResumeRequest *ret);

/* The server's answer in the 101: "ID SECONDS", then " resumed" when it took the session back. */
typedef struct ResumeAnswer {
        char id[RESUME_ID_HEX + 1];
        unsigned seconds;
        bool resumed;
} ResumeAnswer;

int resume_answer_parse(const char *v, ResumeAnswer *ret);

/* The next item of an "ack" control message's arguments at *p ("KEY:OFFSET", separated by
 * spaces; decimal, 1 to 19 digits each): 1 with it (and *p past it), 0 at the end, -EBADMSG
 * for anything else. */
int resume_ack_next(const char **p, uint64_t *ret_key, uint64_t *ret_offset);

/* HMAC-SHA256 with the token over the connection's exporter (label "EXPORTER-inletsd-resume",
 * context the id) and the id. Without TLS (ws://) the exporter is left out: the key is then as
 * secret as the token, which such a connection sends in the clear anyway. */
int resume_key(TlsConn *conn, const char *token, const char *id, uint8_t ret[static 32]);

/* HMAC-SHA256 with the key over "inletsd resume proof", the id and conn's exporter (context
 * "proof"), in hex. */
int resume_proof(TlsConn *conn, const uint8_t key[static 32], const char *id, char ret[static RESUME_PROOF_HEX + 1]);
