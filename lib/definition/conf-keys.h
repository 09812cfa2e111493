// SPDX-License-Identifier: LGPL-2.1-or-later
/* The table of definition keys ([Section] Key=), what definition_parse_buffer() knows. Listed
 * for the check that every key is documented (conf-keys-list, tests/test-doc-keys.py). */
#pragma once

#include "conf.h"

/* The i-th key of the table and its section; NULL past the end. */
const char *conf_key_at(size_t i, const char **ret_section);
