/* The multi engine: many transfers at once on one libcurl multi handle. */
#ifndef SENTRY_ENGINE_H
#define SENTRY_ENGINE_H

#include "compat.h"

/* Registers the engine metatable and pushes the constructor, core.new_engine. */
int sentry_engine_open(lua_State *L);

#endif
