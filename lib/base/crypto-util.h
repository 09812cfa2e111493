// SPDX-License-Identifier: LGPL-2.1-or-later
/* The few cryptographic primitives the helpers need, from GnuTLS: key-grade random bytes and
 * tokens, SHA-256, and comparing secrets without a timing side channel. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

int random_bytes(void *buf, size_t n);
int random_token(char **ret); /* 32 random bytes, hex encoded */
int sha256(const void *data, size_t n, uint8_t ret[static 32]);
/* HMAC-SHA256 (RFC 2104). */
int hmac_sha256(const void *key, size_t key_len, const void *data, size_t n, uint8_t ret[static 32]);
/* Compares two secrets in time independent of where they differ, and of their lengths. */
bool secret_equal(const char *a, size_t alen, const char *b, size_t blen);
