// SPDX-License-Identifier: LGPL-2.1-or-later
/* The byte layer: a non-blocking socket with or without a GnuTLS session on it. Reads are
 * buffered (one 256 KiB recv feeds many records); writes are collected and flushed in large
 * send()s. Nothing above this file sees a GNUTLS_E_* code. */
#pragma once

#include <gnutls/gnutls.h>

#include "macro.h"

typedef struct TlsConn TlsConn;

int tls_server_credentials(const char *cert_pem, size_t cert_len, const char *key_pem, size_t key_len,
                           gnutls_certificate_credentials_t *ret, char **ret_error);
int tls_server_credentials_from_files(const char *cert_file, const char *key_file,
                                      gnutls_certificate_credentials_t *ret, char **ret_error);
int tls_client_credentials(const char *ca_file, gnutls_certificate_credentials_t *ret, char **ret_error);

/* Takes ownership of fd. creds NULL: plaintext. A client checks the server's certificate against
 * creds' CAs and host (a DNS name or an IP address); or, with pin (a SHA-256), against that one
 * certificate alone: the leaf is accepted when it is the pinned certificate; otherwise the
 * pinned certificate must be in the chain sent, the chain must verify to it, and the leaf must
 * name host for a TLS server. Either way the handshake fails before anything is written. */
int tls_conn_new_server(int fd, gnutls_certificate_credentials_t creds, TlsConn **ret);
int tls_conn_new_client(int fd, gnutls_certificate_credentials_t creds, const char *host, const uint8_t *pin,
                        TlsConn **ret);
TlsConn *tls_conn_free(TlsConn *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(TlsConn *, tls_conn_free);

int tls_conn_fd(TlsConn *c);
bool tls_conn_is_tls(TlsConn *c);
/* RFC 5705/8446 keying material of the connection (after the handshake): n bytes for label and
 * context. -EOPNOTSUPP without TLS. */
int tls_conn_exporter(TlsConn *c, const char *label, const char *context, uint8_t *ret, size_t n);

/* Server side, before the handshake: offer these ALPN protocols (our order wins). */
int tls_conn_set_alpn(TlsConn *c, const char *const *protocols, size_t n);
/* After the handshake: whether ALPN selected protocol. */
bool tls_conn_alpn_is(TlsConn *c, const char *protocol);

/* 1: done; 0: in progress, call again when the socket is ready; <0: failed
 * (tls_conn_error() says why). */
int tls_conn_handshake(TlsConn *c);
/* "TLS1.3/ECDHE-SECP256R1/..." */
char *tls_conn_describe(TlsConn *c);

/* 1 with a pointer to plaintext valid until the next call; 0 at EOF; -EAGAIN; <0 error. */
int tls_conn_recv(TlsConn *c, uint8_t **ret, size_t *ret_len);
/* While holding, what tls_conn_recv() handed out stays valid until tls_conn_release() -- as long
 * as tls_conn_can_hold() said so before the next tls_conn_recv(): the owner can then write the
 * plaintext of several records to a socket in one writev(). */
void tls_conn_hold(TlsConn *c, bool hold);
bool tls_conn_can_hold(TlsConn *c);
void tls_conn_release(TlsConn *c);
/* For owners of edge-triggered sockets (EPOLLIN|EPOLLRDHUP|EPOLLET): tls_conn_edge() with each
 * event's revents; tls_conn_readable() then says whether tls_conn_recv() may find input: what
 * the socket may still hold (until EAGAIN, or a short read, which empties a TCP socket's queue),
 * and what was read but not handed out yet (epoll cannot tell of that). */
void tls_conn_edge(TlsConn *c, uint32_t revents);
bool tls_conn_readable(TlsConn *c);
/* Queues all of buf (encrypting it); never -EAGAIN. Small writes are corked and share one
 * record at the next flush (or the next large write). */
int tls_conn_send(TlsConn *c, const void *buf, size_t len);
/* 0 when everything queued went out, -EAGAIN when some is left, <0 on error. */
int tls_conn_flush(TlsConn *c);
/* Bytes queued, corked ones included. */
size_t tls_conn_pending(TlsConn *c);
/* Bytes the socket has taken so far: progress, for a peer that may have stopped reading. */
uint64_t tls_conn_sent(TlsConn *c);
/* Whether the handshake waits for the socket to become writable. */
bool tls_conn_handshake_wants_write(TlsConn *c);
/* Sends close_notify, best effort. */
void tls_conn_bye(TlsConn *c);

const char *tls_conn_error(TlsConn *c);

/* When the first certificate of creds expires (Unix time), 0 without one. */
uint64_t tls_credentials_not_after(gnutls_certificate_credentials_t creds);
/* SHA-256 of a DER certificate. */
int tls_cert_fingerprint(const gnutls_datum_t *der, uint8_t ret[static 32]);
