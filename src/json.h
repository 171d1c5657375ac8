/* JSON decoding into Lua values (sentry.json's decoder). */
#ifndef SENTRY_JSON_H
#define SENTRY_JSON_H

#include "compat.h"

/* core.decode_json(text, null, array_metatable) -> value | nil, message.
 * Objects become tables, arrays sequences (an empty one gets
 * array_metatable, so it is sent back as []), null becomes `null`, numbers
 * Lua numbers (floats: every integer up to 2^53 exactly). Each table is made
 * with its final size, so no table grows while it is filled; short object
 * keys are remembered between calls, so a key seen before is not interned
 * again. Never raises for bad text: the message says what is wrong and at
 * which character. */
void sentry_json_open(lua_State *L); /* pushes core.decode_json */

#endif
