// SPDX-License-Identifier: LGPL-2.1-or-later
/* Parsers for the values configuration and command lines carry: booleans, numbers, sizes,
 * time spans, ports and "host:port". Each returns 0 or -EINVAL/-ERANGE and writes *ret only
 * on success. */
#pragma once

#include <stdint.h>

/* "1/yes/y/true/t/on" → 1, "0/no/n/false/f/off" → 0 (any case), else -EINVAL. */
int parse_boolean(const char *s);
/* 1..65535. */
int parse_port(const char *s, uint16_t *ret);
/* "30", "30s", "500ms", "2min", "1h"; several may be added: "1min 30s". */
int parse_sec(const char *s, uint64_t *ret_usec);
/* "1048576", "64K", "16M", "1G" (binary units, also "KiB"...). */
int parse_size(const char *s, uint64_t *ret);
/* Decimal digits only: no sign, no space. */
int parse_unsigned(const char *s, unsigned *ret);

/* Splits "host:port" / "[v6]:port" / "host"; ret_host is newly allocated. */
int split_host_port(const char *s, uint16_t default_port, char **ret_host, uint16_t *ret_port);
/* The port of "host:port" / "[v6]:port", 0 if there is none (authority may be NULL). */
uint16_t authority_port(const char *authority);
