/* sentry.core: the module table. Transfers live in client.c, the rate-limit
 * and retry policy in ratelimit.c; this file binds them to Lua. */
#define _POSIX_C_SOURCE 200809L
#include "client.h"
#include "engine.h"
#include "json.h"
#include "links.h"
#include "object.h"
#include "digest.h"
#include "ratelimit.h"
#include "timeutil.h"
#include "transfer.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <limits.h>

#ifndef PATH_MAX
#define PATH_MAX 4096
#endif

static int core_now(lua_State *L) {
  lua_pushnumber(L, sentry_wall_clock());
  return 1;
}

static int core_monotonic(lua_State *L) {
  lua_pushnumber(L, sentry_monotonic_clock());
  return 1;
}

static int core_sleep(lua_State *L) {
  sentry_sleep(luaL_checknumber(L, 1));
  return 0;
}

/* The process id: a client notices a fork by it (see sentry_forked). */
static int core_getpid(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)sentry_pid());
  return 1;
}

static int core_getcwd(lua_State *L) {
  char path[PATH_MAX];
  if (getcwd(path, sizeof path) == NULL) {
    lua_pushnil(L);
    lua_pushstring(L, "cannot read the current directory");
    return 2;
  }
  lua_pushstring(L, path);
  return 1;
}

/* Permission bits of a file, or nil when it cannot be read. */
static int core_stat_mode(lua_State *L) {
  struct stat st;
  if (stat(luaL_checkstring(L, 1), &st) != 0) {
    lua_pushnil(L);
    return 1;
  }
  lua_pushinteger(L, (lua_Integer)(st.st_mode & 07777));
  return 1;
}

/* read_config_file(path, max_bytes) -> text, mode | false (no such file) |
 * nil, message. Only a regular file is read: a FIFO would block the open or
 * the read forever, a device (/dev/zero) would never end. O_NONBLOCK makes the
 * open of a FIFO return at once; fstat then tells what was opened, so a file
 * swapped after a check cannot slip through. */
static int core_read_config_file(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  lua_Integer max_bytes = luaL_checkinteger(L, 2);
  struct stat st;
  luaL_Buffer b;
  char *chunk;
  size_t total = 0;
  int fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT || errno == ENOTDIR) {
      lua_pushboolean(L, 0);
      return 1;
    }
    lua_pushnil(L);
    lua_pushstring(L, strerror(errno));
    return 2;
  }
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    lua_pushnil(L);
    lua_pushliteral(L, "not a regular file (a directory, FIFO, socket or device); not read");
    return 2;
  }
  if (st.st_size > (off_t)max_bytes) {
    close(fd);
    lua_pushnil(L);
    lua_pushfstring(L, "larger than %d KiB; not read", (int)(max_bytes / 1024));
    return 2;
  }
  luaL_buffinit(L, &b);
  for (;;) {
    ssize_t got;
    chunk = luaL_prepbuffer(&b);
    got = read(fd, chunk, LUAL_BUFFERSIZE);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) {
      int saved = errno;
      close(fd);
      lua_pushnil(L);
      lua_pushstring(L, strerror(saved));
      return 2;
    }
    if (got == 0) break;
    total += (size_t)got;
    luaL_addsize(&b, (size_t)got);
    if (total > (size_t)max_bytes) { /* grew while being read */
      close(fd);
      lua_pushnil(L);
      lua_pushfstring(L, "larger than %d KiB; not read", (int)(max_bytes / 1024));
      return 2;
    }
  }
  close(fd);
  luaL_pushresult(&b);
  lua_pushinteger(L, (lua_Integer)(st.st_mode & 07777));
  return 2;
}

/* xorshift64*: jitter needs spread, not secrecy. */
static double random01(void) {
  static uint64_t state = 0;
  if (state == 0) state = (uint64_t)(sentry_monotonic_clock() * 1e9) ^ ((uint64_t)getpid() << 32) ^ 1;
  state ^= state >> 12;
  state ^= state << 25;
  state ^= state >> 27;
  return (double)((state * 2685821657736338717ULL) >> 11) / 9007199254740992.0;
}

static double field_number(lua_State *L, int table, const char *name, double fallback) {
  double value = fallback;
  lua_getfield(L, table, name);
  if (lua_type(L, -1) == LUA_TNUMBER) value = lua_tonumber(L, -1);
  lua_pop(L, 1);
  return value;
}

static void read_count(lua_State *L, int table, const char *name, unsigned bit, double *out,
                       sentry_rate_limit *rl) {
  lua_getfield(L, table, name);
  if (lua_type(L, -1) == LUA_TNUMBER) {
    *out = lua_tonumber(L, -1);
    rl->present |= bit;
  }
  lua_pop(L, 1);
}

/* Reads what perform() returned (or an endpoint's remembered response) back into C. */
static double read_response(lua_State *L, int res, sentry_rate_limit *rl, int *status) {
  memset(rl, 0, sizeof *rl);
  *status = 0;
  if (lua_type(L, res) != LUA_TTABLE) return 0;
  *status = (int)field_number(L, res, "status", 0);
  lua_getfield(L, res, "rate_limit");
  if (lua_type(L, -1) == LUA_TTABLE) {
    int t = lua_gettop(L);
    read_count(L, t, "limit", SENTRY_RL_LIMIT, &rl->limit, rl);
    read_count(L, t, "remaining", SENTRY_RL_REMAINING, &rl->remaining, rl);
    read_count(L, t, "reset", SENTRY_RL_RESET, &rl->reset, rl);
    read_count(L, t, "concurrent_limit", SENTRY_RL_CONCURRENT_LIMIT, &rl->concurrent_limit, rl);
    read_count(L, t, "concurrent_remaining", SENTRY_RL_CONCURRENT_REMAINING,
               &rl->concurrent_remaining, rl);
  }
  lua_pop(L, 1);
  lua_getfield(L, res, "retry_after");
  if (lua_type(L, -1) == LUA_TNUMBER) {
    rl->has_retry_after = 1;
    rl->retry_after = lua_tonumber(L, -1);
  }
  lua_pop(L, 1);
  rl->clock_skew = field_number(L, res, "clock_skew", 0);
  return field_number(L, res, "received_at", sentry_wall_clock());
}

static sentry_transport_outcome transport_outcome(const char *code) {
  if (code == NULL) return SENTRY_TRANSPORT_OK;
  if (strcmp(code, "connect") == 0) return SENTRY_TRANSPORT_CONNECT;
  if (strcmp(code, "timeout") == 0) return SENTRY_TRANSPORT_TIMEOUT;
  if (strcmp(code, "network") == 0) return SENTRY_TRANSPORT_FAILED;
  return SENTRY_TRANSPORT_FATAL;
}

typedef struct {
  sentry_object object;
  sentry_retry_policy rules;
} policy_object;

static int policy_decide(lua_State *L);

static const luaL_Reg policy_methods[] = {{"decide", policy_decide}, {NULL, NULL}};

static const sentry_class policy_class = {"sentry.core.policy", "policy", NULL, NULL, policy_methods};

/* core.new_policy{ max_retries=, max_retry_wait=, backoff_base=, backoff_factor=,
 *                  backoff_cap=, reset_margin=, retry_unsafe= }: read once per client. */
static int core_new_policy(lua_State *L) {
  policy_object *object;
  sentry_retry_policy *policy;
  double retries;
  luaL_checktype(L, 1, LUA_TTABLE);
  object = sentry_object_new(L, &policy_class, sizeof *object);
  object->object.closed = 0; /* it holds nothing to release */
  policy = &object->rules;
  retries = field_number(L, 1, "max_retries", 3);
  /* (int) of a double out of range is undefined: max_retries = math.huge is allowed */
  policy->max_retries = retries >= INT_MAX ? INT_MAX : retries > 0 ? (int)retries : 0;
  policy->max_retry_wait = field_number(L, 1, "max_retry_wait", 60);
  policy->backoff_base = field_number(L, 1, "backoff_base", 1);
  policy->backoff_factor = field_number(L, 1, "backoff_factor", 2);
  policy->backoff_cap = field_number(L, 1, "backoff_cap", 30);
  policy->reset_margin = field_number(L, 1, "reset_margin", 0.1);
  lua_getfield(L, 1, "retry_unsafe");
  policy->retry_unsafe = lua_toboolean(L, -1);
  lua_pop(L, 1);
  return 1;
}

/* policy:decide(attempts, idempotent, res, transport_code)
 *   -> action ("done" | "retry" | "exhausted" | "too_long"), wait, reason */
static int policy_decide(lua_State *L) {
  static const char *const actions[] = {"done", "retry", "exhausted", "too_long"};
  const sentry_retry_policy *policy = &((policy_object *)sentry_object_check(L, 1, &policy_class))->rules;
  int attempts = (int)luaL_checkinteger(L, 2);
  sentry_rate_limit rl;
  sentry_retry_decision d;
  int status = 0;
  double received_at;
  if (lua_type(L, 4) == LUA_TTABLE) {
    status = (int)field_number(L, 4, "status", 0);
    /* The common case, a final answer: nothing else to read. */
    if (status != 0 && sentry_status_is_final(status)) {
      lua_pushliteral(L, "done");
      lua_pushnumber(L, 0);
      lua_pushnil(L);
      return 3;
    }
  }
  received_at = read_response(L, 4, &rl, &status);
  d = sentry_retry_decide(policy, attempts, lua_toboolean(L, 3), status,
                          transport_outcome(luaL_optstring(L, 5, NULL)), &rl, received_at,
                          sentry_wall_clock(), random01());
  lua_pushstring(L, actions[d.action]);
  lua_pushnumber(L, d.wait);
  if (d.reason) {
    lua_pushstring(L, d.reason);
  } else {
    lua_pushnil(L);
  }
  return 3;
}

static const luaL_Reg core_functions[] = {
    {"now", core_now},
    {"monotonic", core_monotonic},
    {"sleep", core_sleep},
    {"getpid", core_getpid},
    {"getcwd", core_getcwd},
    {"stat_mode", core_stat_mode},
    {"read_config_file", core_read_config_file},
    {"new_policy", core_new_policy},
    {"sha256_hex", sentry_lua_sha256_hex},
    {"check_request", sentry_lua_check_request},
    {"read_rate_limit", sentry_lua_read_rate_limit},
    {"parse_headers", sentry_lua_parse_headers},
    {"timeout_ms", sentry_lua_timeout_ms},
    {"sentry_links", sentry_lua_sentry_links},
    {NULL, NULL}};

/* The one exported symbol (everything else is hidden by -fvisibility=hidden). */
__attribute__((visibility("default"))) int luaopen_sentry_core(lua_State *L);

int luaopen_sentry_core(lua_State *L) {
  /* Not thread-safe; safe here because a Lua state loads modules one at a time. */
  static int curl_ready = 0;
  if (!curl_ready) {
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
      return luaL_error(L, "libcurl failed to initialise");
    }
    sentry_processes_init();
    curl_ready = 1;
  }
  sentry_class_register(L, &policy_class);
  lua_newtable(L);
  luaL_setfuncs(L, core_functions, 0);
  sentry_client_open(L);
  lua_setfield(L, -2, "new_handle");
  sentry_json_open(L);
  lua_setfield(L, -2, "decode_json");
  sentry_engine_open(L);
  lua_setfield(L, -2, "new_engine");
  lua_pushstring(L, curl_version_info(CURLVERSION_NOW)->version);
  lua_setfield(L, -2, "curl_version");
  {
    const char *tls = curl_version_info(CURLVERSION_NOW)->ssl_version;
    lua_pushstring(L, tls != NULL ? tls : "none");
    lua_setfield(L, -2, "curl_tls");
  }
  lua_pushinteger(L, SENTRY_MAX_HEADER_BYTES);
  lua_setfield(L, -2, "MAX_HEADER_BYTES");
  lua_pushliteral(L, SENTRY_CUT_HEADERS_MESSAGE);
  lua_setfield(L, -2, "CUT_HEADERS_MESSAGE");
  lua_pushliteral(L, SENTRY_HEADERS_TOO_LARGE_MESSAGE);
  lua_setfield(L, -2, "HEADERS_TOO_LARGE_MESSAGE");
  lua_pushliteral(L, SENTRY_BODY_TOO_LARGE_FORMAT);
  lua_setfield(L, -2, "BODY_TOO_LARGE_FORMAT");
  return 1;
}
