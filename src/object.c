#include "object.h"

#include <string.h>

/* The metamethods get their class as upvalue 1. */
static const sentry_class *upvalue_class(lua_State *L) {
  return lua_touserdata(L, lua_upvalueindex(1));
}

static int object_close(lua_State *L) {
  const sentry_class *c = upvalue_class(L);
  sentry_object *self = sentry_object_check(L, 1, c);
  c->close(self);
  self->closed = 1;
  return 0;
}

static int object_tostring(lua_State *L) {
  const sentry_class *c = upvalue_class(L);
  sentry_object *self = sentry_object_check(L, 1, c);
  if (self->closed) {
    lua_pushfstring(L, "%s (closed)", c->name);
  } else if (c->describe != NULL) {
    c->describe(L, self);
  } else {
    lua_pushfstring(L, "%s (%p)", c->name, (void *)self);
  }
  return 1;
}

static void set_method(lua_State *L, const sentry_class *c, const char *name, lua_CFunction f) {
  lua_pushlightuserdata(L, (void *)c);
  lua_pushcclosure(L, f, 1);
  lua_setfield(L, -2, name);
}

void sentry_class_register(lua_State *L, const sentry_class *c) {
  if (luaL_newmetatable(L, c->name)) {
    set_method(L, c, "__tostring", object_tostring);
    lua_pushstring(L, c->name); /* luaL_newmetatable sets it only on 5.3+ */
    lua_setfield(L, -2, "__name");
    lua_newtable(L);
    luaL_setfuncs(L, c->methods, 0);
    if (c->close != NULL) {
      set_method(L, c, "close", object_close);
      lua_getfield(L, -1, "close");
      lua_setfield(L, -3, "__gc");
      lua_getfield(L, -1, "close");
      lua_setfield(L, -3, "__close");
    }
    lua_setfield(L, -2, "__index");
  }
  lua_pop(L, 1);
}

void *sentry_object_new(lua_State *L, const sentry_class *c, size_t size) {
  sentry_object *self = lua_newuserdata(L, size);
  memset(self, 0, size);
  self->closed = 1;
  luaL_getmetatable(L, c->name);
  lua_setmetatable(L, -2);
  return self;
}

void *sentry_object_check(lua_State *L, int index, const sentry_class *c) {
  return luaL_checkudata(L, index, c->name);
}

void *sentry_object_check_open(lua_State *L, int index, const sentry_class *c) {
  sentry_object *self = sentry_object_check(L, index, c);
  if (self->closed) luaL_error(L, "attempt to use a closed %s", c->noun);
  return self;
}
