// SPDX-License-Identifier: LGPL-2.1-or-later
/* Where a definition's token comes from: Token=, TokenFile=, systemd's credential "token", or
 * NAME.token beside NAME.conf. */
#pragma once

#include "conf.h"

/* Fills d->token from the first source that applies and checks its length and characters.
 * Failures name the definition and the source in *ret_error, never the token. */
int definition_load_token(Definition *d, char **ret_error);

/* A proxy URL with a user and no password: the password from ProxyPasswordFile= (relative to
 * the definition's directory), else systemd's credential "proxy-password" if passed, else none.
 * Read with a size bound; never part of an error message. */
int definition_load_proxy_password(Definition *d, char **ret_error);
