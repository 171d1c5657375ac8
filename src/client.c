#include "client.h"

#include "object.h"
#include "transfer.h"

/* A client's blocking side: one easy handle, reused so sequential requests
 * share one kept-alive connection. */
typedef struct {
  sentry_object object;
  sentry_settings *settings;
  sentry_transfer transfer;
} sentry_handle;

static void handle_close(void *self) {
  sentry_handle *h = self;
  sentry_transfer_cleanup(&h->transfer);
  sentry_settings_release(h->settings);
  h->settings = NULL;
}

static int handle_perform(lua_State *L);

static const luaL_Reg handle_methods[] = {{"perform", handle_perform}, {NULL, NULL}};

static const sentry_class handle_class = {"sentry.core.handle", "client", handle_close, NULL, handle_methods};

sentry_settings *sentry_client_settings(lua_State *L, int index) {
  return ((sentry_handle *)sentry_object_check_open(L, index, &handle_class))->settings;
}

/* core.new_handle{ token=, user_agent=, ca_file=, proxy=, proxy_username=, proxy_password=,
 *                  insecure=, connect_timeout=, max_body_bytes= } */
static int handle_new(lua_State *L) {
  sentry_handle *h;
  luaL_checktype(L, 1, LUA_TTABLE);
  h = sentry_object_new(L, &handle_class, sizeof *h);
  h->settings = sentry_settings_new(L, 1);
  if (h->settings == NULL) return luaL_error(L, "out of memory");
  h->object.closed = 0;
  sentry_transfer_init(L, &h->transfer, h->settings);
  return 1;
}

/* handle:perform(method, url, headers, body, timeout_seconds)
 *   -> res, message, code: see sentry_transfer_push_result */
static int handle_perform(lua_State *L) {
  sentry_handle *h = sentry_object_check_open(L, 1, &handle_class);
  sentry_transfer_prepare(L, &h->transfer, 2);
  return sentry_transfer_push_result(L, &h->transfer, curl_easy_perform(h->transfer.curl));
}

int sentry_client_open(lua_State *L) {
  sentry_class_register(L, &handle_class);
  lua_pushcfunction(L, handle_new);
  return 1;
}
