/* Many transfers at once on a libcurl multi handle, over the client's shared
 * connection cache. Driven from Lua in one of two ways:
 *   "poll":   engine:perform() and engine:wait(seconds) (a blocking batch);
 *   "socket": a host event loop watches the sockets engine:sockets() reports,
 *             calls engine:socket_action(fd, events) when they are ready, and
 *             arms a timer from engine:timeout() (libuv in Neovim).
 * libcurl's socket and timer callbacks only record what they are told; Lua
 * reads it after each call. */
#include "engine.h"

#include "client.h"
#include "object.h"
#include "transfer.h"

#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
  sentry_transfer transfer;
  lua_Integer id;
  int busy;
  int orphaned; /* in flight when the process forked: the parent's to finish */
} slot;

typedef struct {
  curl_socket_t fd;
  int what; /* CURL_POLL_IN / OUT / INOUT / REMOVE */
} socket_change;

typedef struct {
  sentry_object object;
  CURLM *multi;
  long pid; /* the process that made multi */
  sentry_settings *settings;
  slot **slots; /* individually allocated: libcurl keeps pointers into them */
  size_t slot_count;
  int in_flight;
  int socket_mode;
  socket_change *changes;
  size_t change_count, change_cap;
  long timeout_ms;
  int out_of_memory;
} engine;

static int on_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp) {
  engine *e = userp;
  (void)easy;
  (void)socketp;
  if (e->change_count == e->change_cap) {
    size_t cap = e->change_cap ? e->change_cap * 2 : 16;
    socket_change *grown = realloc(e->changes, cap * sizeof *grown);
    if (grown == NULL) {
      e->out_of_memory = 1;
      return -1;
    }
    e->changes = grown;
    e->change_cap = cap;
  }
  e->changes[e->change_count].fd = fd;
  e->changes[e->change_count].what = what;
  e->change_count++;
  return 0;
}

static int on_timer(CURLM *multi, long timeout_ms, void *userp) {
  engine *e = userp;
  (void)multi;
  e->timeout_ms = timeout_ms;
  return 0;
}

static void engine_close(void *self) {
  engine *e = self;
  size_t i;
  int forked = sentry_forked(e->pid); /* then the multi and its transfers are the parent's */
  for (i = 0; i < e->slot_count; i++) {
    if (e->slots[i]->busy && !e->slots[i]->orphaned && e->multi != NULL && !forked) {
      curl_multi_remove_handle(e->multi, e->slots[i]->transfer.curl);
    }
    sentry_transfer_cleanup(&e->slots[i]->transfer);
    free(e->slots[i]);
  }
  free(e->slots);
  e->slots = NULL;
  e->slot_count = 0;
  e->in_flight = 0;
  if (forked) {
    sentry_forget(e->multi);
  } else if (e->multi != NULL) {
    curl_multi_cleanup(e->multi);
  }
  e->multi = NULL;
  free(e->changes);
  e->changes = NULL;
  e->change_count = e->change_cap = 0;
  sentry_settings_release(e->settings);
  e->settings = NULL;
}

static void engine_describe(lua_State *L, void *self) {
  lua_pushfstring(L, "sentry.core.engine (%d in flight)", ((engine *)self)->in_flight);
}

static const sentry_class engine_class; /* defined below its methods */

static void adopt_after_fork(lua_State *L, engine *e);

static engine *check_open_engine(lua_State *L) {
  engine *e = sentry_object_check_open(L, 1, &engine_class);
  if (sentry_forked(e->pid)) adopt_after_fork(L, e);
  return e;
}

static const char *mode_name(int socket_mode) {
  return socket_mode ? "socket" : "poll";
}

/* An engine serves one way of driving it: a poll engine's sockets are never
 * reported, and polling a socket engine would steal the host loop's events. */
static engine *check_engine_mode(lua_State *L, int socket_mode, const char *method) {
  engine *e = check_open_engine(L);
  if (e->socket_mode != socket_mode) {
    luaL_error(L, "engine:%s is for a \"%s\" engine; this one was made in \"%s\" mode", method,
               mode_name(socket_mode), mode_name(e->socket_mode));
  }
  return e;
}

static void new_multi(lua_State *L, engine *e) {
  e->pid = sentry_pid();
  e->multi = curl_multi_init();
  if (e->multi == NULL) {
    luaL_error(L, "libcurl could not create a multi handle");
    return; /* not reached: luaL_error does not return */
  }
  if (e->socket_mode) {
    curl_multi_setopt(e->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
    curl_multi_setopt(e->multi, CURLMOPT_SOCKETDATA, (void *)e);
    curl_multi_setopt(e->multi, CURLMOPT_TIMERFUNCTION, on_timer);
    curl_multi_setopt(e->multi, CURLMOPT_TIMERDATA, (void *)e);
  }
}

/* core.new_engine(handle, mode): mode "poll" (default) or "socket". */
static int engine_new(lua_State *L) {
  sentry_settings *settings = sentry_client_settings(L, 1);
  const char *mode = luaL_optstring(L, 2, "poll");
  engine *e;
  if (strcmp(mode, "poll") != 0 && strcmp(mode, "socket") != 0) {
    return luaL_argerror(L, 2, "mode must be \"poll\" or \"socket\"");
  }
  e = sentry_object_new(L, &engine_class, sizeof *e);
  e->timeout_ms = -1;
  e->settings = settings;
  sentry_settings_retain(settings);
  e->socket_mode = strcmp(mode, "socket") == 0;
  new_multi(L, e);
  e->object.closed = 0;
  return 1;
}

/* After fork: the parent's multi is forgotten and the child's requests start
 * afresh. What was in flight at the fork is the parent's: engine:completed()
 * reports it to the child as a network error (so an idempotent request is
 * retried on the child's own connection). */
static void adopt_after_fork(lua_State *L, engine *e) {
  size_t i;
  sentry_forget(e->multi);
  e->multi = NULL;
  for (i = 0; i < e->slot_count; i++) e->slots[i]->orphaned = e->slots[i]->busy;
  e->change_count = 0;
  e->timeout_ms = -1;
  new_multi(L, e);
}

static slot *free_slot(lua_State *L, engine *e) {
  size_t i;
  slot **grown;
  slot *s;
  for (i = 0; i < e->slot_count; i++) {
    if (!e->slots[i]->busy) return e->slots[i];
  }
  /* luaL_error does not return; the returns after it say so to the analyzers. */
  grown = realloc(e->slots, (e->slot_count + 1) * sizeof *grown);
  if (grown == NULL) {
    luaL_error(L, "out of memory");
    return NULL;
  }
  e->slots = grown;
  s = calloc(1, sizeof *s);
  if (s == NULL) {
    luaL_error(L, "out of memory");
    return NULL;
  }
  e->slots[e->slot_count++] = s; /* owned by the engine before init can raise */
  sentry_transfer_init(L, &s->transfer, e->settings);
  return s;
}

/* engine:start(id, method, url, headers, body, timeout) */
static int engine_start(lua_State *L) {
  engine *e = check_open_engine(L);
  lua_Integer id = luaL_checkinteger(L, 2);
  slot *s = free_slot(L, e);
  sentry_transfer_prepare(L, &s->transfer, 3);
  if (curl_multi_add_handle(e->multi, s->transfer.curl) != CURLM_OK) {
    return luaL_error(L, "libcurl refused to start the transfer");
  }
  s->id = id;
  s->busy = 1;
  e->in_flight++;
  return 0;
}

static int multi_failed(lua_State *L, CURLMcode rc) {
  return luaL_error(L, "libcurl multi error: %s", curl_multi_strerror(rc));
}

/* engine:perform() -> transfers still running ("poll" mode) */
static int engine_perform(lua_State *L) {
  engine *e = check_engine_mode(L, 0, "perform");
  int running = 0;
  CURLMcode rc = curl_multi_perform(e->multi, &running);
  if (rc != CURLM_OK) return multi_failed(L, rc);
  lua_pushinteger(L, running);
  return 1;
}

/* engine:wait(seconds): sleeps until a socket is ready or the time is up ("poll" mode). */
static int engine_wait(lua_State *L) {
  engine *e = check_engine_mode(L, 0, "wait");
  double seconds = luaL_checknumber(L, 2);
  int ms = seconds <= 0 ? 0 : seconds > 3600 ? 3600000 : (int)(seconds * 1000 + 0.5);
  CURLMcode rc = curl_multi_poll(e->multi, NULL, 0, ms, NULL);
  if (rc != CURLM_OK) return multi_failed(L, rc);
  return 0;
}

/* engine:socket_action(fd, events) with events "r", "w", "rw"; fd nil = the timer fired. */
static int engine_socket_action(lua_State *L) {
  engine *e = check_engine_mode(L, 1, "socket_action");
  curl_socket_t fd = CURL_SOCKET_TIMEOUT;
  int flags = 0, running = 0;
  CURLMcode rc;
  if (!lua_isnoneornil(L, 2)) {
    const char *events = luaL_optstring(L, 3, "");
    fd = (curl_socket_t)luaL_checkinteger(L, 2);
    if (strchr(events, 'r') != NULL) flags |= CURL_CSELECT_IN;
    if (strchr(events, 'w') != NULL) flags |= CURL_CSELECT_OUT;
    if (strchr(events, 'e') != NULL) flags |= CURL_CSELECT_ERR;
  }
  rc = curl_multi_socket_action(e->multi, fd, flags, &running);
  if (rc != CURLM_OK) return multi_failed(L, rc);
  if (e->out_of_memory) return luaL_error(L, "out of memory");
  lua_pushinteger(L, running);
  return 1;
}

/* engine:sockets() -> { {fd, "r"|"w"|"rw"|"remove"}, ... } changes since the last call */
static int engine_sockets(lua_State *L) {
  static const char *const names[] = {"none", "r", "w", "rw", "remove"};
  engine *e = check_engine_mode(L, 1, "sockets");
  size_t i;
  lua_createtable(L, (int)e->change_count, 0);
  for (i = 0; i < e->change_count; i++) {
    int what = e->changes[i].what;
    lua_createtable(L, 2, 0);
    lua_pushinteger(L, (lua_Integer)e->changes[i].fd);
    lua_rawseti(L, -2, 1);
    lua_pushstring(L, what >= 0 && what <= 4 ? names[what] : "none");
    lua_rawseti(L, -2, 2);
    lua_rawseti(L, -2, (int)i + 1);
  }
  e->change_count = 0;
  return 1;
}

/* engine:timeout() -> seconds until libcurl wants engine:socket_action(nil), or nil */
static int engine_timeout(lua_State *L) {
  engine *e = check_engine_mode(L, 1, "timeout");
  if (e->timeout_ms < 0) {
    lua_pushnil(L);
  } else {
    lua_pushnumber(L, e->timeout_ms / 1000.0);
  }
  return 1;
}

/* engine:cancel(id) -> true when that transfer was in flight: it is taken off
 * the multi handle (libcurl closes its connection) and never reported. */
static int engine_cancel(lua_State *L) {
  engine *e = check_open_engine(L);
  lua_Integer id = luaL_checkinteger(L, 2);
  size_t i;
  for (i = 0; i < e->slot_count; i++) {
    slot *s = e->slots[i];
    if (s->busy && !s->orphaned && s->id == id) {
      curl_multi_remove_handle(e->multi, s->transfer.curl);
      s->busy = 0;
      e->in_flight--;
      lua_pushboolean(L, 1);
      return 1;
    }
  }
  lua_pushboolean(L, 0);
  return 1;
}

/* Appends the transfers the parent had in flight at the fork to the table on top. */
static int push_orphans(lua_State *L, engine *e) {
  size_t i;
  int n = 0;
  for (i = 0; i < e->slot_count; i++) {
    slot *s = e->slots[i];
    if (!s->orphaned) continue;
    s->orphaned = s->busy = 0;
    e->in_flight--;
    lua_createtable(L, 0, 3);
    lua_pushinteger(L, s->id);
    lua_setfield(L, -2, "id");
    lua_pushliteral(L, "the process forked while this request was in flight; its connection stays with the parent");
    lua_setfield(L, -2, "message");
    lua_pushliteral(L, "network");
    lua_setfield(L, -2, "code");
    lua_rawseti(L, -2, ++n);
  }
  return n;
}

/* engine:completed() -> { {id=, res=} or {id=, message=, code=}, ... } */
static int engine_completed(lua_State *L) {
  engine *e = check_open_engine(L);
  CURLMsg *msg;
  int left, n = 0;
  lua_newtable(L);
  n = push_orphans(L, e);
  while ((msg = curl_multi_info_read(e->multi, &left)) != NULL) {
    slot *s = NULL;
    char *private_data = NULL;
    if (msg->msg != CURLMSG_DONE) continue;
    curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &private_data);
    s = (slot *)(void *)private_data; /* the transfer is the slot's first member */
    curl_multi_remove_handle(e->multi, s->transfer.curl);
    s->busy = 0;
    e->in_flight--;
    lua_createtable(L, 0, 3);
    lua_pushinteger(L, s->id);
    lua_setfield(L, -2, "id");
    sentry_transfer_push_result(L, &s->transfer, msg->data.result);
    lua_setfield(L, -4, "code");
    lua_setfield(L, -3, "message");
    lua_setfield(L, -2, "res");
    lua_rawseti(L, -2, ++n);
  }
  return 1;
}

static int engine_in_flight(lua_State *L) {
  lua_pushinteger(L, check_open_engine(L)->in_flight);
  return 1;
}

static const luaL_Reg engine_methods[] = {
    {"start", engine_start},
    {"perform", engine_perform},
    {"wait", engine_wait},
    {"socket_action", engine_socket_action},
    {"sockets", engine_sockets},
    {"timeout", engine_timeout},
    {"completed", engine_completed},
    {"cancel", engine_cancel},
    {"in_flight", engine_in_flight},
    {NULL, NULL}};

static const sentry_class engine_class = {"sentry.core.engine", "engine", engine_close, engine_describe,
                                          engine_methods};

int sentry_engine_open(lua_State *L) {
  sentry_class_register(L, &engine_class);
  lua_pushcfunction(L, engine_new);
  return 1;
}
