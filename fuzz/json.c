/* core.decode_json over arbitrary text, in a real Lua state. Checks, besides
 * memory safety: it never raises; it returns one value, or nil and "... at
 * character N" with N inside the text (or just past it); a value has the type
 * the text's first character announces; and text that decodes still decodes
 * inside an array (`[` text `]`) unless that is one level too deep. One Lua
 * state serves every input, collected in full after each, so the decoder's
 * cache of keys meets keys of earlier inputs and any it failed to keep alive. */
#include "json.h"

#include <lualib.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define NULL_SENTINEL "null"

/* Calls the decoder under pcall; returns the number of results (aborts on a raise). */
static int decode(lua_State *L, const char *text, size_t len) {
  int base = lua_gettop(L);
  lua_getglobal(L, "decode_json");
  lua_pushlstring(L, text, len);
  lua_pushliteral(L, NULL_SENTINEL);
  lua_newtable(L);
  if (lua_pcall(L, 3, LUA_MULTRET, 0) != 0) abort(); /* documented never to raise */
  return lua_gettop(L) - base;
}

static void check_failure(lua_State *L, int results, size_t len) {
  const char *message, *at;
  long character;
  if (results != 2 || !lua_isnil(L, -2) || lua_type(L, -1) != LUA_TSTRING) abort();
  message = lua_tostring(L, -1);
  at = strstr(message, " at character ");
  if (at == NULL) abort();
  character = strtol(at + strlen(" at character "), NULL, 10);
  if (character < 1 || (size_t)character > len + 1) abort();
}

/* The type the first non-blank character announces. */
static void check_type(lua_State *L, const char *text, size_t len) {
  size_t i = 0;
  int type = lua_type(L, -1);
  while (i < len && strchr(" \t\r\n", text[i]) != NULL) i++;
  if (i == len) abort(); /* blank text cannot decode */
  switch (text[i]) {
    case '{': case '[': if (type != LUA_TTABLE) abort(); break;
    case '"': if (type != LUA_TSTRING) abort(); break;
    case 't': case 'f': if (type != LUA_TBOOLEAN) abort(); break;
    case 'n':
      if (type != LUA_TSTRING || strcmp(lua_tostring(L, -1), NULL_SENTINEL) != 0) abort();
      break;
    default: if (type != LUA_TNUMBER) abort();
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static lua_State *L;
  const char *text = (const char *)data;
  int results;
  if (L == NULL) {
    L = luaL_newstate();
    if (L == NULL) return 0;
    sentry_json_open(L);
    lua_setglobal(L, "decode_json");
  }
  results = decode(L, text, size);
  if (results == 1) {
    char *wrapped = malloc(size + 2);
    check_type(L, text, size);
    if (wrapped != NULL) {
      wrapped[0] = '[';
      memcpy(wrapped + 1, text, size);
      wrapped[size + 1] = ']';
      lua_settop(L, 0);
      results = decode(L, wrapped, size + 2);
      if (results != 1 && !strstr(lua_tostring(L, -1), "deep")) abort();
      free(wrapped);
    }
  } else {
    check_failure(L, results, size);
  }
  lua_settop(L, 0);
  lua_gc(L, LUA_GCCOLLECT, 0);
  return 0;
}
