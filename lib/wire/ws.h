// SPDX-License-Identifier: LGPL-2.1-or-later
/* RFC 6455 framing: a streaming frame parser that unmasks in place and hands payload bytes up
 * as they arrive (the tunnel is a byte stream, so messages are never reassembled), plus the
 * header builder, the masking loop and the handshake's accept key. No I/O here. */
#pragma once

#include "macro.h"

/* The protocol's own numbers, spelled out (RFC 6455 §5.2 and §11.8): a reader checks them
 * against the RFC line by line. */
typedef enum WsOpcode {
        WS_OP_CONTINUATION = 0x0,
        WS_OP_TEXT = 0x1,
        WS_OP_BINARY = 0x2,
        WS_OP_CLOSE = 0x8,
        WS_OP_PING = 0x9,
        WS_OP_PONG = 0xA,
} WsOpcode;

/* Close frame status codes (RFC 6455 §7.4.1). */
enum {
        WS_CLOSE_NORMAL = 1000,
        WS_CLOSE_GOING_AWAY = 1001,
        WS_CLOSE_PROTOCOL_ERROR = 1002,
        WS_CLOSE_UNSUPPORTED_DATA = 1003,
        WS_CLOSE_NO_STATUS = 1005,
        WS_CLOSE_INVALID_PAYLOAD = 1007,
        WS_CLOSE_POLICY = 1008,
        WS_CLOSE_TOO_BIG = 1009,
        WS_CLOSE_INTERNAL_ERROR = 1011,
};

#define WS_HEADER_MAX 14
#define WS_CONTROL_MAX 125
#define WS_TEXT_MAX 4096
#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

typedef struct WsCallbacks {
        /* Payload bytes of binary messages, already unmasked; may be called with any split. */
        int (*data)(void *userdata, uint8_t *p, size_t n);
        /* A whole control frame (ping, pong or close). */
        int (*control)(void *userdata, WsOpcode op, const uint8_t *p, size_t n);
        /* Text message bytes (only with allow_text); fin marks the message's end, with n = 0. */
        int (*text)(void *userdata, const uint8_t *p, size_t n, bool fin);
} WsCallbacks;

typedef struct WsParser {
        bool expect_masked; /* true on the server side: clients must mask */
        bool allow_text;    /* text messages (at most WS_TEXT_MAX) go to the text callback */
        uint64_t max_message;

        uint8_t hdr[WS_HEADER_MAX];
        size_t hdr_len, hdr_need;
        bool in_payload;
        uint8_t opcode;
        bool fin, masked;
        uint8_t key[4];
        uint64_t remaining, mask_offset;
        bool in_message, message_is_text;
        uint64_t message_len;
        uint8_t ctrl[WS_CONTROL_MAX];
        size_t ctrl_len;

        int close_code;        /* what to answer with after an error */
        const char *error;     /* why, for the log */
} WsParser;

void ws_parser_init(WsParser *p, bool expect_masked, uint64_t max_message);

/* Consumes all of buf (modifying it: unmasking happens in place). Returns 0, a negative
 * errno from a callback, or -EBADMSG / -EMSGSIZE with p->close_code and p->error set. */
int ws_parse(WsParser *p, uint8_t *buf, size_t len, const WsCallbacks *cb, void *userdata);

/* Writes a final frame's header; mask may be NULL (server to client). Returns its length. */
size_t ws_header_build(uint8_t buf[static WS_HEADER_MAX], WsOpcode op, uint64_t payload_len,
                       const uint8_t *mask);

/* XORs buf with key, starting at byte `offset` of the masking sequence; ws_mask_to() writes
 * src XOR key to dst (the same buffer, or one not overlapping it). */
void ws_mask(uint8_t *buf, size_t len, const uint8_t key[static 4], uint64_t offset);
void ws_mask_to(uint8_t *dst, const uint8_t *src, size_t len, const uint8_t key[static 4], uint64_t offset);

/* base64(SHA-1(key + GUID)), newly allocated. */
char *ws_accept_key(const char *key);
