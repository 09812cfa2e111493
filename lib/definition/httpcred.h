// SPDX-License-Identifier: LGPL-2.1-or-later
/* HTTP credentials a tunnel client checks for its hosts: Apache htpasswd files (bcrypt,
 * SHA-crypt, yescrypt: what libcrypt's crypt_r() verifies), files of bearer tokens, and the
 * Authorization field that carries either. Passwords and tokens are secrets: compared in
 * constant time, erased on free, never part of a message. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "macro.h"

#define HTPASSWD_USERS_MAX 10000
#define HTPASSWD_LINE_MAX 4096
#define BEARER_TOKENS_MAX 1000
#define BEARER_TOKEN_MIN 16
/* Longer passwords never match, and cost no hash: SHA-crypt's work grows with the password's
 * length (a 511-byte one costs 6-11 times an 8-byte one), which a guesser would choose. */
#define HTTP_PASSWORD_MAX 128
#define HTTP_CREDENTIALS_MAX 2048   /* decoded user:password, or a token */

typedef struct Htpasswd Htpasswd;
typedef struct BearerTokens BearerTokens;

/* Parses an htpasswd file's contents (name for messages: "PATH"). Lines "user:hash"; blank
 * lines and "#" comments skipped. Refused, with "name:line: …" in *ret_error and never the
 * hash: Apache's MD5 ($apr1$), {SHA}, plain and DES crypt entries (crypt_r() cannot verify
 * them all, and they are weak), malformed lines, lines over HTPASSWD_LINE_MAX, duplicate users,
 * more than HTPASSWD_USERS_MAX users, a file with none. */
int htpasswd_parse(const char *data, size_t size, const char *name, Htpasswd **ret, char **ret_error);
/* The same from a regular file. */
int htpasswd_load(const char *path, Htpasswd **ret, char **ret_error);
/* One user with password, hashed here (yescrypt): for a password given on a command line.
 * -EINVAL for a user name with ':' or control bytes, or a password over HTTP_PASSWORD_MAX. */
int htpasswd_new_single(const char *user, const char *password, Htpasswd **ret);
Htpasswd *htpasswd_free(Htpasswd *h);
DEFINE_TRIVIAL_CLEANUP_FUNC(Htpasswd *, htpasswd_free);
size_t htpasswd_users(const Htpasswd *h);
/* 1: user's password is password; 0: it is not, or no such user (which costs a hash of the
 * same kind, so the time says nothing of who exists); < 0: no memory. Passwords with NUL
 * bytes or over HTTP_PASSWORD_MAX bytes never match. The same as htpasswd_lookup() and then
 * htpasswd_check_hash(). */
int htpasswd_verify(const Htpasswd *h, const char *user, size_t user_len, const char *password,
                    size_t password_len);
/* The hash to check user's password with: the user's own (*ret_known true) or, for a name not
 * in the file, one of the file's hashes chosen by the name under a random key of the file
 * (always the same one for a name; *ret_known false). Points into h. */
const char *htpasswd_lookup(const Htpasswd *h, const char *user, size_t user_len, bool *ret_known);
/* Hashes password with hash's settings and compares (in constant time): 1 when known and
 * equal. Touches nothing but its arguments: safe on any thread. */
int htpasswd_check_hash(const char *hash, bool known, const char *password, size_t password_len);

/* One token a line (trailing spaces and CR dropped; blank lines and "#" comments skipped):
 * at least BEARER_TOKEN_MIN printable, non-space ASCII bytes each, at most BEARER_TOKENS_MAX. */
int bearer_tokens_parse(const char *data, size_t size, const char *name, BearerTokens **ret, char **ret_error);
int bearer_tokens_load(const char *path, BearerTokens **ret, char **ret_error);
BearerTokens *bearer_tokens_free(BearerTokens *b);
DEFINE_TRIVIAL_CLEANUP_FUNC(BearerTokens *, bearer_tokens_free);
/* Whether token is one of b's: every token compared, by SHA-256, so neither which one nor how
 * much of one matched shows in the time. */
bool bearer_tokens_match(const BearerTokens *b, const char *token, size_t len);

typedef enum HttpAuthScheme {
        HTTP_AUTH_BASIC,
        HTTP_AUTH_BEARER,
} HttpAuthScheme;

typedef struct HttpCredentials {
        HttpAuthScheme scheme;
        char *buf;                  /* owns what the pointers below point into; erased on done */
        size_t buf_len;
        const char *user, *password; /* Basic: split at the first ':' (RFC 7617) */
        size_t user_len, password_len;
        const char *token;          /* Bearer */
        size_t token_len;
} HttpCredentials;

/* An Authorization value: "Basic <base64 of user:password>" or "Bearer <token68>" (the scheme
 * in any case, one or more spaces). -EBADMSG for anything else, or over HTTP_CREDENTIALS_MAX. */
int http_authorization_parse(const char *value, size_t len, HttpCredentials *ret);
void http_credentials_done(HttpCredentials *c);
