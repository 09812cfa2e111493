// SPDX-License-Identifier: LGPL-2.1-or-later
/* The state a daemon hands to its next process on a restart (through systemd's file
 * descriptor store, in a memfd): lines "KIND key=value key=value ...\n", some followed by raw
 * bytes whose length a field gives. Written and read by the same program; still read as
 * untrusted input (every value checked, every length bounded). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define HANDOVER_MAGIC "inletsd-handover version=1"
#define HANDOVER_LINE_MAX 4096 /* a session line with 256 ports fits */
#define HANDOVER_FIELDS_MAX 24
#define HANDOVER_STATE_MAX ((uint64_t) 4 << 30)

typedef struct HandoverReader {
        const uint8_t *p;
        size_t left;
} HandoverReader;

typedef struct HandoverLine {
        char buf[HANDOVER_LINE_MAX];
        const char *kind;
        const char *key[HANDOVER_FIELDS_MAX], *value[HANDOVER_FIELDS_MAX];
        size_t n;
} HandoverLine;

/* The next line, split in place: 0 and *ret filled, -EBADMSG for one that is too long, not
 * terminated, has a field without '=' or a duplicate key, or bytes outside printable ASCII. */
int handover_next(HandoverReader *r, HandoverLine *ret);
/* A field's value, NULL when absent. */
const char *handover_get(const HandoverLine *l, const char *key);
/* A field as a decimal number <= max: -EBADMSG when absent or not one. */
int handover_u64(const HandoverLine *l, const char *key, uint64_t max, uint64_t *ret);
/* A field that is a token: 1..max bytes, no '=' (empty or absent: -EBADMSG). */
int handover_token(const HandoverLine *l, const char *key, size_t max, const char **ret);
/* n raw bytes following a line. */
int handover_bytes(HandoverReader *r, size_t n, const uint8_t **ret);
/* A value for a field: printable ASCII without spaces and '='. */
bool handover_token_ok(const char *s, size_t max);
/* The state in a memfd (at most 4 GiB), mapped read-only; handover_unmap() when done. */
int handover_map_fd(int fd, const uint8_t **ret, size_t *ret_n);
void handover_unmap(const uint8_t *p, size_t n);
/* The first line: HANDOVER_MAGIC, else -EBADMSG (another version's state). */
int handover_begin(HandoverReader *r);
