/* The Lua 5.2+ API calls the core uses, provided for Lua 5.1: lua_rawlen,
 * and luaL_setfuncs (without upvalues, the only way the core calls it).
 * LuaJIT 2.1 already ships luaL_setfuncs; its lauxlib.h defines luaL_newlib,
 * which is how plain 5.1 is told apart (LuaJIT's lua.h has no version macro).
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
  (void)nup; /* always 0 */
  for (; l->name != NULL; l++) {
    lua_pushcfunction(L, l->func);
    lua_setfield(L, -2, l->name);
  }
}
#define luaL_setfuncs sentry_setfuncs
#endif

#if LUA_VERSION_NUM == 501
#define lua_rawlen lua_objlen
#endif

#endif
