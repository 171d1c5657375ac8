/* The client's blocking handle: one reused libcurl easy handle. */
#ifndef SENTRY_CLIENT_H
#define SENTRY_CLIENT_H

#include "compat.h"
#include "transfer.h"

/* Registers the handle metatable and pushes the constructor, core.new_handle. */
int sentry_client_open(lua_State *L);

/* The settings of the open handle at index (raises on a closed one). */
sentry_settings *sentry_client_settings(lua_State *L, int index);

#endif
