// SPDX-License-Identifier: LGPL-2.1-or-later
/* HTTP capsules (RFC 9297) as a UDP tunnel stream carries datagrams in them (RFC 9298): a capsule
 * is a type and a length, each a QUIC variable-length integer (RFC 9000 §16), then that many
 * bytes. A DATAGRAM capsule (type 0x00) holds a context ID (a varint) and, for context ID 0, one
 * UDP payload. Capsules of other types, and datagrams of other contexts, are skipped, as RFC 9297
 * and RFC 9298 say. The UDP tunnel's wire format: docs/protocol.md, "UDP". */
#pragma once

#include <stddef.h>
#include <stdint.h>

#define CAPSULE_DATAGRAM 0x00
#define QUIC_VARINT_MAX ((UINT64_C(1) << 62) - 1)
#define QUIC_VARINT_LEN_MAX 8
/* UDP's largest payload over IPv4 (65,535 minus the IP and UDP headers' 28 bytes would be less;
 * this is the UDP length field's own bound, minus its header). */
#define CAPSULE_PAYLOAD_MAX 65527
/* A capsule's type and length at their longest. */
#define CAPSULE_HEADER_MAX (2 * QUIC_VARINT_LEN_MAX)
/* The longest capsule a UDP stream takes: a DATAGRAM of the largest payload with its context ID,
 * and room to spare. A longer one breaks the stream (docs/protocol.md). */
#define CAPSULE_LENGTH_MAX 65536
/* The room capsule_write_datagram() needs for a payload of n bytes. */
#define CAPSULE_DATAGRAM_SIZE(n) (CAPSULE_HEADER_MAX + 1 + (n))

/* The varint at p (n bytes there): its size (1, 2, 4 or 8) with the value in *ret, or 0 when p
 * holds only part of it. Longer encodings than needed are accepted (RFC 9000 allows them). */
size_t quic_varint_read(const uint8_t *p, size_t n, uint64_t *ret);
/* v (at most QUIC_VARINT_MAX) in as few bytes as it takes; returns how many. */
size_t quic_varint_write(uint8_t *p, uint64_t v);

typedef struct Capsule {
        uint64_t type;
        const uint8_t *data;  /* into the parsed buffer */
        size_t length;
} Capsule;

/* The first capsule of buf (n bytes): its whole size (> 0) with *ret pointing into buf, 0 while
 * buf holds only part of it, -E2BIG when its length says more than max bytes (the stream cannot
 * go on: its capsules' boundaries would be lost). */
int capsule_parse(const uint8_t *buf, size_t n, size_t max, Capsule *ret);

/* A DATAGRAM capsule's UDP payload: 1 with *ret and *ret_n (it may be empty), 0 for a datagram of
 * another context (dropped), -EBADMSG for one without a context ID, -E2BIG for a payload over
 * CAPSULE_PAYLOAD_MAX. */
int capsule_datagram_payload(const Capsule *c, const uint8_t **ret, size_t *ret_n);

/* The start of a DATAGRAM capsule of context ID 0 for a payload of n bytes (everything before the
 * payload: at most CAPSULE_DATAGRAM_SIZE(0) bytes); returns its size. */
size_t capsule_datagram_header(uint8_t *out, size_t n);

/* A DATAGRAM capsule of context ID 0 holding payload (n <= CAPSULE_PAYLOAD_MAX bytes), written to
 * out (CAPSULE_DATAGRAM_SIZE(n) bytes of room); returns its size. */
size_t capsule_write_datagram(uint8_t *out, const void *payload, size_t n);

/* A stream of capsules as DATA frames bring it, in pieces of any size: complete capsules are read
 * where they lie, and only one split between pieces is copied (at most CAPSULE_HEADER_MAX +
 * CAPSULE_LENGTH_MAX bytes). */
typedef struct CapsuleReader {
        uint8_t *buf;
        size_t n;
} CapsuleReader;

typedef void (*capsule_payload_func_t)(const uint8_t *payload, size_t n, void *userdata);

/* Feeds n bytes at p: f gets the payload of each DATAGRAM capsule of context 0, in order; other
 * capsules and contexts are skipped. < 0 when the stream cannot go on: -E2BIG for a capsule over
 * CAPSULE_LENGTH_MAX, -EBADMSG for a DATAGRAM without a context ID, -ENOMEM. */
int capsule_reader_feed(CapsuleReader *r, const uint8_t *p, size_t n, capsule_payload_func_t f, void *userdata);
void capsule_reader_done(CapsuleReader *r);
