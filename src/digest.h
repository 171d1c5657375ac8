#ifndef SENTRY_DIGEST_H
#define SENTRY_DIGEST_H

#include <stddef.h>
#include <stdint.h>

#include "compat.h"

/* SHA-256 of len bytes at data. */
void sentry_sha256(const unsigned char *data, size_t len, unsigned char out[32]);

int sentry_lua_sha256_hex(lua_State *L);

#endif
