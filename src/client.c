#include "client.h"

#include "headers.h"
#include "ratelimit.h"
#include "timeutil.h"

#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>

#define CLIENT_METATABLE "sentry.core.handle"
#define MAX_HEADER_BLOCK (1024 * 1024)
#define KEEP_BUFFER_BYTES (256 * 1024) /* larger buffers are freed after each request */

typedef struct {
  char *data;
  size_t len, cap;
} buffer;

typedef struct {
  CURL *curl;
  struct curl_slist *request_headers; /* owned here: libcurl borrows it per transfer */
  char *authorization;                /* the bearer header line; wiped on close */
  buffer body;
  buffer header_block;                /* the final response's raw header lines */
  size_t max_body_bytes;
  int body_too_large, headers_too_large, out_of_memory;
  char error[CURL_ERROR_SIZE];
  int closed;
} sentry_handle;

/* --- buffers (filled by libcurl callbacks; they never touch Lua) --- */

static int buffer_append(buffer *b, const char *data, size_t n) {
  if (b->len + n > b->cap) {
    size_t cap = b->cap ? b->cap : 16384;
    char *grown;
    while (cap < b->len + n) cap *= 2;
    grown = realloc(b->data, cap);
    if (grown == NULL) return 0;
    b->data = grown;
    b->cap = cap;
  }
  memcpy(b->data + b->len, data, n);
  b->len += n;
  return 1;
}

static void buffer_release_if_large(buffer *b) {
  if (b->cap > KEEP_BUFFER_BYTES) {
    free(b->data);
    b->data = NULL;
    b->cap = 0;
  }
  b->len = 0;
}

static void buffer_free(buffer *b) {
  free(b->data);
  b->data = NULL;
  b->len = b->cap = 0;
}

static size_t on_body(char *data, size_t size, size_t count, void *userdata) {
  sentry_handle *h = userdata;
  size_t n = size * count;
  if (h->body.len + n > h->max_body_bytes) {
    h->body_too_large = 1;
    return 0;
  }
  if (!buffer_append(&h->body, data, n)) {
    h->out_of_memory = 1;
    return 0;
  }
  return n;
}

static size_t on_header(char *data, size_t size, size_t count, void *userdata) {
  sentry_handle *h = userdata;
  size_t n = size * count;
  /* A status line starts a new response (after a 1xx or a proxy's CONNECT reply):
   * only the final response's headers are kept. */
  if (n >= 5 && memcmp(data, "HTTP/", 5) == 0) h->header_block.len = 0;
  if (h->header_block.len + n > MAX_HEADER_BLOCK) {
    h->headers_too_large = 1;
    return 0;
  }
  if (!buffer_append(&h->header_block, data, n)) {
    h->out_of_memory = 1;
    return 0;
  }
  return n;
}

/* --- lifecycle --- */

static void wipe(char *secret) {
  volatile char *p = secret;
  while (p != NULL && *p) *p++ = 0;
}

static void handle_close(sentry_handle *h) {
  if (h->curl != NULL) curl_easy_cleanup(h->curl);
  h->curl = NULL;
  curl_slist_free_all(h->request_headers);
  h->request_headers = NULL;
  wipe(h->authorization);
  free(h->authorization);
  h->authorization = NULL;
  buffer_free(&h->body);
  buffer_free(&h->header_block);
  h->closed = 1;
}

static sentry_handle *check_handle(lua_State *L) {
  return luaL_checkudata(L, 1, CLIENT_METATABLE);
}

static sentry_handle *check_open_handle(lua_State *L) {
  sentry_handle *h = check_handle(L);
  if (h->closed) luaL_error(L, "attempt to use a closed client");
  return h;
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

/* Rejects bytes that would let a value break out of its header line. */
static void check_header_safe(lua_State *L, const char *what, const char *s, size_t len) {
  size_t i;
  for (i = 0; i < len; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '\r' || c == '\n' || c == '\0') {
      luaL_error(L, "%s contains a line break or NUL byte at position %d", what, (int)i + 1);
    }
  }
}

static const char *opt_string(lua_State *L, int opts, const char *field, size_t *len) {
  const char *s = NULL;
  lua_getfield(L, opts, field);
  if (!lua_isnil(L, -1)) {
    if (lua_type(L, -1) != LUA_TSTRING) luaL_error(L, "option '%s' must be a string", field);
    s = lua_tolstring(L, -1, len);
  }
  lua_pop(L, 1); /* the string stays alive in the opts table */
  return s;
}

static double opt_number(lua_State *L, int opts, const char *field, double fallback) {
  double value = fallback;
  lua_getfield(L, opts, field);
  if (!lua_isnil(L, -1)) {
    if (lua_type(L, -1) != LUA_TNUMBER) luaL_error(L, "option '%s' must be a number", field);
    value = lua_tonumber(L, -1);
  }
  lua_pop(L, 1);
  return value;
}

static int opt_boolean(lua_State *L, int opts, const char *field) {
  int value;
  lua_getfield(L, opts, field);
  value = lua_toboolean(L, -1);
  lua_pop(L, 1);
  return value;
}

#define SET(option, value)                                                        \
  do {                                                                            \
    if (curl_easy_setopt(h->curl, option, value) != CURLE_OK)                     \
      return luaL_error(L, "libcurl refused option %s", #option);                 \
  } while (0)

/* core.new_handle{ token=, user_agent=, ca_file=, proxy=, proxy_username=, proxy_password=,
 *                  insecure=, connect_timeout=, max_body_bytes= } */
static int handle_new(lua_State *L) {
  static const char prefix[] = "Authorization: Bearer ";
  size_t token_len = 0, line_len;
  const char *token, *user_agent, *ca_file, *proxy, *proxy_username, *proxy_password;
  double connect_timeout, max_body;
  sentry_handle *h;

  luaL_checktype(L, 1, LUA_TTABLE);
  token = opt_string(L, 1, "token", &token_len);
  user_agent = opt_string(L, 1, "user_agent", NULL);
  ca_file = opt_string(L, 1, "ca_file", NULL);
  proxy = opt_string(L, 1, "proxy", NULL);
  proxy_username = opt_string(L, 1, "proxy_username", NULL);
  proxy_password = opt_string(L, 1, "proxy_password", NULL);
  connect_timeout = opt_number(L, 1, "connect_timeout", 10);
  max_body = opt_number(L, 1, "max_body_bytes", 64.0 * 1024 * 1024);
  if (token == NULL || token_len == 0) return luaL_error(L, "option 'token' is required");
  check_header_safe(L, "token", token, token_len);
  if (user_agent != NULL) check_header_safe(L, "user_agent", user_agent, strlen(user_agent));
  if (!(connect_timeout > 0)) return luaL_error(L, "option 'connect_timeout' must be positive");
  if (!(max_body >= 1)) return luaL_error(L, "option 'max_body_bytes' must be at least 1");

  /* Complete and "closed" before anything is acquired: any failure below is
   * then cleaned up by __gc. */
  h = lua_newuserdata(L, sizeof *h);
  memset(h, 0, sizeof *h);
  h->closed = 1;
  luaL_setmetatable(L, CLIENT_METATABLE);

  h->curl = curl_easy_init();
  if (h->curl == NULL) return luaL_error(L, "libcurl could not create a handle");
  h->closed = 0;
  line_len = sizeof prefix - 1 + token_len;
  h->authorization = malloc(line_len + 1);
  if (h->authorization == NULL) return luaL_error(L, "out of memory");
  memcpy(h->authorization, prefix, sizeof prefix - 1);
  memcpy(h->authorization + sizeof prefix - 1, token, token_len);
  h->authorization[line_len] = '\0';
  h->max_body_bytes = (size_t)max_body;

  SET(CURLOPT_NOSIGNAL, 1L);
  SET(CURLOPT_ERRORBUFFER, h->error);
  SET(CURLOPT_WRITEFUNCTION, on_body);
  SET(CURLOPT_WRITEDATA, (void *)h);
  SET(CURLOPT_HEADERFUNCTION, on_header);
  SET(CURLOPT_HEADERDATA, (void *)h);
  SET(CURLOPT_ACCEPT_ENCODING, ""); /* every encoding this libcurl decodes, gzip included */
  SET(CURLOPT_FOLLOWLOCATION, 0L);
  SET(CURLOPT_TCP_KEEPALIVE, 1L);
  SET(CURLOPT_CONNECTTIMEOUT_MS, (long)(connect_timeout * 1000));
#if LIBCURL_VERSION_NUM >= 0x075500
  SET(CURLOPT_PROTOCOLS_STR, "http,https");
#else
  SET(CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
  if (user_agent != NULL) SET(CURLOPT_USERAGENT, user_agent);
  if (ca_file != NULL) SET(CURLOPT_CAINFO, ca_file);
  if (proxy != NULL) SET(CURLOPT_PROXY, proxy);
  if (proxy_username != NULL) SET(CURLOPT_PROXYUSERNAME, proxy_username);
  if (proxy_password != NULL) SET(CURLOPT_PROXYPASSWORD, proxy_password);
  if (opt_boolean(L, 1, "insecure")) {
    SET(CURLOPT_SSL_VERIFYPEER, 0L);
    SET(CURLOPT_SSL_VERIFYHOST, 0L);
  }
  return 1;
}

/* --- one request --- */

static void check_method(lua_State *L, const char *method, size_t len) {
  size_t i;
  if (len == 0 || len > 32) luaL_argerror(L, 2, "not an HTTP method");
  for (i = 0; i < len; i++) {
    if (!sentry_is_tchar((unsigned char)method[i])) luaL_argerror(L, 2, "not an HTTP method");
  }
}

static void check_url(lua_State *L, const char *url, size_t len) {
  size_t i;
  for (i = 0; i < len; i++) {
    unsigned char c = (unsigned char)url[i];
    if (c <= ' ' || c == 0x7f) {
      luaL_error(L, "URL contains a space or control character at position %d", (int)i + 1);
    }
  }
}

static int append_header(lua_State *L, sentry_handle *h, const char *line) {
  struct curl_slist *grown = curl_slist_append(h->request_headers, line);
  if (grown == NULL) return luaL_error(L, "out of memory");
  h->request_headers = grown;
  return 0;
}

/* Builds the request's header list into the handle (so an error midway leaks nothing). */
static void build_request_headers(lua_State *L, sentry_handle *h, int headers) {
  curl_slist_free_all(h->request_headers);
  h->request_headers = NULL;
  append_header(L, h, h->authorization);
  append_header(L, h, "Expect:");
  if (lua_isnoneornil(L, headers)) return;
  luaL_checktype(L, headers, LUA_TTABLE);
  lua_pushnil(L);
  while (lua_next(L, headers) != 0) {
    size_t name_len, value_len, i;
    const char *name, *value;
    if (lua_type(L, -2) != LUA_TSTRING || lua_type(L, -1) != LUA_TSTRING) {
      luaL_error(L, "header names and values must be strings");
    }
    name = lua_tolstring(L, -2, &name_len);
    value = lua_tolstring(L, -1, &value_len);
    for (i = 0; i < name_len; i++) {
      if (!sentry_is_tchar((unsigned char)name[i])) {
        luaL_error(L, "header name '%s' has a character not allowed in a header name", name);
      }
    }
    if (name_len == 0) luaL_error(L, "header name is empty");
    if (sentry_header_name_is(name, name_len, "authorization")) {
      luaL_error(L, "the Authorization header is set from the client's token");
    }
    check_header_safe(L, "header value", value, value_len);
    /* "Name:" alone would delete a default header; "Name;" sends it empty. */
    lua_pushfstring(L, value_len ? "%s: %s" : "%s;", name, value);
    append_header(L, h, lua_tostring(L, -1));
    lua_pop(L, 2);
  }
}

typedef struct {
  lua_State *L;
  int table;
  sentry_rate_limit *rate_limit;
} header_walk;

static int push_header(void *userdata, const char *name, size_t name_len, const char *value,
                       size_t value_len) {
  header_walk *walk = userdata;
  lua_State *L = walk->L;
  char lower[128];
  size_t i;
  sentry_rate_limit_observe(walk->rate_limit, name, name_len, value, value_len);
  if (name_len >= sizeof lower) return 0; /* no header we read is that long */
  for (i = 0; i < name_len; i++) {
    char c = name[i];
    lower[i] = (c >= 'A' && c <= 'Z') ? (char)(c + ('a' - 'A')) : c;
  }
  lua_pushlstring(L, lower, name_len);
  lua_pushvalue(L, -1);
  lua_rawget(L, walk->table);
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    lua_pushlstring(L, value, value_len);
  } else {
    /* Repeated fields join with ", " (RFC 9110 5.3). */
    lua_pushliteral(L, ", ");
    lua_pushlstring(L, value, value_len);
    lua_concat(L, 3);
  }
  lua_rawset(L, walk->table);
  return 0;
}

static void set_number(lua_State *L, const char *field, double value) {
  lua_pushnumber(L, value);
  lua_setfield(L, -2, field);
}

/* Counts and epoch seconds read as integers on Lua 5.3+ when they are whole. */
static void set_count(lua_State *L, const char *field, double value) {
  if (value == (double)(lua_Integer)value) {
    lua_pushinteger(L, (lua_Integer)value);
  } else {
    lua_pushnumber(L, value);
  }
  lua_setfield(L, -2, field);
}

static void push_rate_limit(lua_State *L, const sentry_rate_limit *rl) {
  lua_createtable(L, 0, 5);
  if (rl->present & SENTRY_RL_LIMIT) set_count(L, "limit", rl->limit);
  if (rl->present & SENTRY_RL_REMAINING) set_count(L, "remaining", rl->remaining);
  if (rl->present & SENTRY_RL_RESET) set_count(L, "reset", rl->reset);
  if (rl->present & SENTRY_RL_CONCURRENT_LIMIT)
    set_count(L, "concurrent_limit", rl->concurrent_limit);
  if (rl->present & SENTRY_RL_CONCURRENT_REMAINING)
    set_count(L, "concurrent_remaining", rl->concurrent_remaining);
}

static int push_transport_error(lua_State *L, sentry_handle *h, CURLcode rc) {
  const char *code;
  const char *message = h->error[0] ? h->error : curl_easy_strerror(rc);
  switch (rc) {
    case CURLE_OPERATION_TIMEDOUT: code = "timeout"; break;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT: code = "connect"; break;
    case CURLE_PEER_FAILED_VERIFICATION:
#if LIBCURL_VERSION_NUM < 0x073e00
    case CURLE_SSL_CACERT:
#endif
    case CURLE_SSL_CACERT_BADFILE: code = "tls"; break;
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL: code = "invalid"; break;
    default: code = "network"; break;
  }
  if (h->body_too_large) {
    code = "too_large";
    message = "the response body is larger than max_body_bytes";
  } else if (h->headers_too_large) {
    code = "too_large";
    message = "the response headers are larger than 1 MiB";
  } else if (h->out_of_memory) {
    code = "network";
    message = "out of memory while receiving the response";
  }
  lua_pushnil(L);
  lua_pushstring(L, message);
  lua_pushstring(L, code);
  return 3;
}

/* handle:perform(method, url, headers, body, timeout_seconds)
 *   -> { status, headers, body, received_at, rate_limit?, retry_after?, date? }
 *   or nil, message, code ("timeout" | "connect" | "network" | "tls" | "too_large" | "invalid") */
static int handle_perform(lua_State *L) {
  sentry_handle *h = check_open_handle(L);
  size_t method_len, url_len, body_len = 0;
  const char *method = luaL_checklstring(L, 2, &method_len);
  const char *url = luaL_checklstring(L, 3, &url_len);
  const char *body = luaL_optlstring(L, 5, NULL, &body_len);
  double timeout = luaL_optnumber(L, 6, 30);
  CURLcode rc;
  long status = 0;
  sentry_rate_limit rate_limit;
  header_walk walk;
  double received_at;

  check_method(L, method, method_len);
  check_url(L, url, url_len);
  if (!(timeout > 0)) luaL_argerror(L, 6, "timeout must be positive");
  build_request_headers(L, h, 4);

  SET(CURLOPT_URL, url);
  SET(CURLOPT_HTTPHEADER, h->request_headers);
  SET(CURLOPT_TIMEOUT_MS, (long)(timeout * 1000));
  SET(CURLOPT_HTTPGET, 1L); /* clears the previous request's method and body */
  SET(CURLOPT_NOBODY, 0L);
  SET(CURLOPT_CUSTOMREQUEST, (char *)NULL);
  if (strcmp(method, "HEAD") == 0) {
    SET(CURLOPT_NOBODY, 1L);
  } else if (body != NULL || strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0 ||
             strcmp(method, "PATCH") == 0) {
    /* The body string stays on the Lua stack for the whole transfer. */
    SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
    SET(CURLOPT_POSTFIELDS, body != NULL ? body : "");
    if (strcmp(method, "POST") != 0) SET(CURLOPT_CUSTOMREQUEST, method);
  } else if (strcmp(method, "GET") != 0) {
    SET(CURLOPT_CUSTOMREQUEST, method);
  }

  h->body.len = h->header_block.len = 0;
  h->body_too_large = h->headers_too_large = h->out_of_memory = 0;
  h->error[0] = '\0';
  rc = curl_easy_perform(h->curl);
  received_at = sentry_wall_clock();
  curl_easy_setopt(h->curl, CURLOPT_POSTFIELDS, (char *)NULL); /* drop the borrowed body */
  if (rc != CURLE_OK) {
    buffer_release_if_large(&h->body);
    return push_transport_error(L, h, rc);
  }
  curl_easy_getinfo(h->curl, CURLINFO_RESPONSE_CODE, &status);

  lua_createtable(L, 0, 8);
  lua_pushinteger(L, (lua_Integer)status);
  lua_setfield(L, -2, "status");
  lua_pushlstring(L, h->body.data ? h->body.data : "", h->body.len);
  lua_setfield(L, -2, "body");
  set_number(L, "received_at", received_at);

  memset(&rate_limit, 0, sizeof rate_limit);
  lua_createtable(L, 0, 16);
  walk.L = L;
  walk.table = lua_gettop(L);
  walk.rate_limit = &rate_limit;
  sentry_headers_each(h->header_block.data, h->header_block.len, push_header, &walk);
  lua_setfield(L, -2, "headers");
  sentry_rate_limit_finish(&rate_limit, received_at);
  if (rate_limit.present) {
    push_rate_limit(L, &rate_limit);
    lua_setfield(L, -2, "rate_limit");
  }
  if (rate_limit.has_retry_after) set_number(L, "retry_after", rate_limit.retry_after);
  if (rate_limit.has_date) set_number(L, "date", rate_limit.date);
  buffer_release_if_large(&h->body);
  buffer_release_if_large(&h->header_block);
  return 1;
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
  if (luaL_newmetatable(L, CLIENT_METATABLE)) {
    luaL_setfuncs(L, handle_metamethods, 0);
    luaL_newlib(L, handle_methods);
    lua_setfield(L, -2, "__index");
    lua_pushliteral(L, CLIENT_METATABLE); /* luaL_newmetatable sets it only on 5.3+ */
    lua_setfield(L, -2, "__name");
  }
  lua_pop(L, 1);
  lua_pushcfunction(L, handle_new);
  return 1;
}
