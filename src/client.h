/* The client userdata: one reused libcurl easy handle per client. */
#ifndef SENTRY_CLIENT_H
#define SENTRY_CLIENT_H

#include "compat.h"

/* Registers the client metatable and pushes the constructor, core.new_handle. */
int sentry_client_open(lua_State *L);

#endif
