/* The scan behind sentry.json's exact empty arrays. */
#ifndef SENTRY_JSON_H
#define SENTRY_JSON_H

#include "compat.h"

/* core.replace_empty_arrays(text, replacement) -> the text with each empty
 * array outside a string ("[]", "[ ]", ...) replaced, or nil when it holds
 * none (or a string is left open: the decoder reports that). */
int sentry_lua_replace_empty_arrays(lua_State *L);

#endif
