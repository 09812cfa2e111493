// SPDX-License-Identifier: LGPL-2.1-or-later
/* Where a definition's token comes from: Token=, TokenFile=, systemd's credential "token", or
 * NAME.token beside NAME.conf. */
#pragma once

#include "conf.h"

/* Fills d->token from the first source that applies and checks its length and characters.
 * Failures name the definition and the source in *ret_error, never the token. */
int definition_load_token(Definition *d, char **ret_error);
