/* The lifecycle every core userdata shares (liolib's pattern): a metatable
 * named after the class with __index, __name, __tostring and, for classes
 * that hold resources, __gc, __close and a close method. */
#ifndef SENTRY_OBJECT_H
#define SENTRY_OBJECT_H

#include "compat.h"

#include <stddef.h>

/* The first member of every object. */
typedef struct {
  int closed;
} sentry_object;

typedef struct {
  const char *name;                              /* metatable name, "sentry.core.handle" */
  const char *noun;                              /* "client": "attempt to use a closed client" */
  void (*close)(void *self);                     /* releases; safe twice; NULL: nothing to release */
  void (*describe)(lua_State *L, void *self);    /* pushes the open object's tostring; may be NULL */
  const luaL_Reg *methods;
} sentry_class;

/* Creates the class's metatable (once per state); leaves the stack as it was. */
void sentry_class_register(lua_State *L, const sentry_class *c);

/* Pushes a zeroed object of `size` bytes, closed until the constructor opens
 * it, so that __gc cleans up whatever a failing constructor acquired. */
void *sentry_object_new(lua_State *L, const sentry_class *c, size_t size);

void *sentry_object_check(lua_State *L, int index, const sentry_class *c);

/* As sentry_object_check, raising on a closed object. */
void *sentry_object_check_open(lua_State *L, int index, const sentry_class *c);

#endif
