#include "json.h"

#include <string.h>

/* Lua's %s: the blanks a JSON text may hold between tokens, and a few more. */
static int is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

/* The position after the ']' closing an empty array opened at `at`, or 0. */
static size_t empty_array_end(const char *s, size_t len, size_t at) {
  size_t i = at + 1;
  while (i < len && is_space(s[i])) i++;
  return i < len && s[i] == ']' ? i + 1 : 0;
}

/* Might the text hold an empty array? Most texts have none: a look past
 * each '[' answers without the exact walk (a "[]" inside a string says yes). */
static int may_hold_empty_array(const char *s, size_t len) {
  const char *at = memchr(s, '[', len);
  while (at != NULL) {
    size_t i = (size_t)(at - s);
    if (empty_array_end(s, len, i)) return 1;
    at = memchr(at + 1, '[', len - i - 1);
  }
  return 0;
}

int sentry_lua_replace_empty_arrays(lua_State *L) {
  size_t len, replacement_len, pos = 0, from = 0;
  const char *s = luaL_checklstring(L, 1, &len);
  const char *replacement = luaL_checklstring(L, 2, &replacement_len);
  int replaced = 0;
  luaL_Buffer b;
  if (!may_hold_empty_array(s, len)) {
    lua_pushnil(L);
    return 1;
  }
  luaL_buffinit(L, &b);
  while (pos < len) {
    char c = s[pos];
    if (c == '"') { /* a string: skip to its closing quote */
      pos++;
      while (pos < len && s[pos] != '"') pos += s[pos] == '\\' ? 2 : 1;
      if (pos >= len) { /* unterminated: the decoder reports it */
        lua_pushnil(L);
        return 1;
      }
      pos++;
    } else if (c == '[') {
      size_t end = empty_array_end(s, len, pos);
      if (end) {
        luaL_addlstring(&b, s + from, pos - from);
        luaL_addlstring(&b, replacement, replacement_len);
        replaced = 1;
        from = pos = end;
      } else {
        pos++;
      }
    } else {
      pos++;
    }
  }
  if (!replaced) {
    lua_pushnil(L);
    return 1;
  }
  luaL_addlstring(&b, s + from, len - from);
  luaL_pushresult(&b);
  return 1;
}
