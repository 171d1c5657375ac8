#include "client.h"

#include "transfer.h"

#include <string.h>

#define HANDLE_METATABLE "sentry.core.handle"

/* A client's blocking side: one easy handle, reused so sequential requests
 * share one kept-alive connection. */
typedef struct {
  sentry_settings *settings;
  sentry_transfer transfer;
  int closed;
} sentry_handle;

static void handle_close(sentry_handle *h) {
  sentry_transfer_cleanup(&h->transfer);
  sentry_settings_release(h->settings);
  h->settings = NULL;
  h->closed = 1;
}

static sentry_handle *check_handle(lua_State *L) {
  return luaL_checkudata(L, 1, HANDLE_METATABLE);
}

static sentry_handle *check_open_handle(lua_State *L) {
  sentry_handle *h = check_handle(L);
  if (h->closed) luaL_error(L, "attempt to use a closed client");
  return h;
}

sentry_settings *sentry_client_settings(lua_State *L, int index) {
  sentry_handle *h = luaL_checkudata(L, index, HANDLE_METATABLE);
  if (h->closed) luaL_error(L, "attempt to use a closed client");
  return h->settings;
}

static int handle_gc(lua_State *L) {
  handle_close(check_handle(L));
  return 0;
}

static int handle_tostring(lua_State *L) {
  sentry_handle *h = check_handle(L);
  if (h->closed) {
    lua_pushliteral(L, "sentry.core.handle (closed)");
  } else {
    lua_pushfstring(L, "sentry.core.handle (%p)", (void *)h);
  }
  return 1;
}

/* core.new_handle{ token=, user_agent=, ca_file=, proxy=, proxy_username=, proxy_password=,
 *                  insecure=, connect_timeout=, max_body_bytes= } */
static int handle_new(lua_State *L) {
  sentry_handle *h;
  luaL_checktype(L, 1, LUA_TTABLE);
  /* Complete and "closed" before anything is acquired: a failure below is
   * then cleaned up by __gc. */
  h = lua_newuserdata(L, sizeof *h);
  memset(h, 0, sizeof *h);
  h->closed = 1;
  luaL_setmetatable(L, HANDLE_METATABLE);
  h->settings = sentry_settings_new(L, 1);
  if (h->settings == NULL) return luaL_error(L, "out of memory");
  h->closed = 0;
  sentry_transfer_init(L, &h->transfer, h->settings);
  return 1;
}

/* handle:perform(method, url, headers, body, timeout_seconds)
 *   -> { status, headers, body, received_at, rate_limit?, retry_after?, date? }
 *   or nil, message, code ("timeout" | "connect" | "network" | "tls" | "too_large" | "invalid") */
static int handle_perform(lua_State *L) {
  sentry_handle *h = check_open_handle(L);
  sentry_transfer_prepare(L, &h->transfer, 2);
  return sentry_transfer_push_result(L, &h->transfer, curl_easy_perform(h->transfer.curl));
}

static int handle_close_method(lua_State *L) {
  handle_close(check_handle(L));
  return 0;
}

static const luaL_Reg handle_methods[] = {
    {"perform", handle_perform},
    {"close", handle_close_method},
    {NULL, NULL}};

static const luaL_Reg handle_metamethods[] = {
    {"__gc", handle_gc},
    {"__close", handle_gc},
    {"__tostring", handle_tostring},
    {NULL, NULL}};

int sentry_client_open(lua_State *L) {
  if (luaL_newmetatable(L, HANDLE_METATABLE)) {
    luaL_setfuncs(L, handle_metamethods, 0);
    luaL_newlib(L, handle_methods);
    lua_setfield(L, -2, "__index");
    lua_pushliteral(L, HANDLE_METATABLE); /* luaL_newmetatable sets it only on 5.3+ */
    lua_setfield(L, -2, "__name");
  }
  lua_pop(L, 1);
  lua_pushcfunction(L, handle_new);
  return 1;
}
