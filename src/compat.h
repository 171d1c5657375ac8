/* The few Lua 5.2+ API calls the core uses, provided for Lua 5.1.
 * LuaJIT 2.1 already ships them; its lauxlib.h defines luaL_newlib, which
 * is how plain 5.1 is told apart (LuaJIT's lua.h has no version macro).
 *
 * Numbers: Lua 5.1 and LuaJIT have no integer subtype, so lua_pushinteger
 * gives them a double. Every whole number the core hands to Lua (HTTP status,
 * rate-limit counts and Unix times, descriptors, ids, byte counts) stays far
 * below 2^53, where a double is exact: integers beyond 2^53 are not needed,
 * and Sentry sends its large IDs as strings. */
#ifndef SENTRY_COMPAT_H
#define SENTRY_COMPAT_H

#include <lua.h>
#include <lauxlib.h>

#if LUA_VERSION_NUM == 501 && !defined(luaL_newlib)
static inline void sentry_setfuncs(lua_State *L, const luaL_Reg *l, int nup) {
  luaL_checkstack(L, nup, "too many upvalues");
  for (; l->name != NULL; l++) {
    int i;
    for (i = 0; i < nup; i++) lua_pushvalue(L, -nup);
    lua_pushcclosure(L, l->func, nup);
    lua_setfield(L, -(nup + 2), l->name);
  }
  lua_pop(L, nup);
}
#define luaL_setfuncs sentry_setfuncs

static inline void sentry_setmetatable(lua_State *L, const char *name) {
  luaL_getmetatable(L, name);
  lua_setmetatable(L, -2);
}
#define luaL_setmetatable sentry_setmetatable
#define luaL_newlibtable(L, l) lua_createtable(L, 0, sizeof(l) / sizeof((l)[0]) - 1)
#define luaL_newlib(L, l) (luaL_newlibtable(L, l), luaL_setfuncs(L, l, 0))
#endif

#if LUA_VERSION_NUM == 501
#define lua_rawlen lua_objlen
#endif

#endif
