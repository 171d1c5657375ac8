#define _POSIX_C_SOURCE 200809L
#include "transfer.h"

#include "headers.h"
#include "ratelimit.h"
#include "timeutil.h"

#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <math.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>

#define KEEP_BUFFER_BYTES (256 * 1024) /* larger buffers are freed after each request */

/* --- buffers (filled by libcurl callbacks, which never touch Lua) --- */

/* Appends n bytes; a buffer's first allocation holds at least `first` bytes. */
static int buffer_append(sentry_buffer *b, const char *data, size_t n, size_t first) {
  if (b->len + n > b->cap) {
    size_t cap = b->cap ? b->cap : first;
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

static void buffer_release_if_large(sentry_buffer *b) {
  if (b->cap > KEEP_BUFFER_BYTES) {
    free(b->data);
    b->data = NULL;
    b->cap = 0;
  }
  b->len = 0;
}

static void buffer_free(sentry_buffer *b) {
  free(b->data);
  b->data = NULL;
  b->len = b->cap = 0;
}

/* Appends what libcurl delivered, or flags why not (returning 0 makes libcurl stop). */
static size_t take(sentry_transfer *t, sentry_buffer *b, const char *data, size_t n, size_t limit,
                   int *too_large) {
  if (b->len + n > limit) {
    *too_large = 1;
    return 0;
  }
  if (!buffer_append(b, data, n, 16384)) {
    t->out_of_memory = 1;
    return 0;
  }
  return n;
}

static size_t on_body(char *data, size_t size, size_t count, void *userdata) {
  sentry_transfer *t = userdata;
  return take(t, &t->body, data, size * count, t->settings->max_body_bytes, &t->body_too_large);
}

static size_t on_header(char *data, size_t size, size_t count, void *userdata) {
  sentry_transfer *t = userdata;
  size_t n = size * count;
  /* A status line starts a new response (after a 1xx or a proxy's CONNECT reply):
   * only the final response's headers are kept. */
  if (n >= 5 && memcmp(data, "HTTP/", 5) == 0) {
    t->header_block.len = 0;
    t->headers_complete = 0;
  } else if ((n == 2 && data[0] == '\r' && data[1] == '\n') || (n == 1 && data[0] == '\n')) {
    t->headers_complete = 1; /* the blank line that ends the header section */
  }
  return take(t, &t->header_block, data, n, SENTRY_MAX_HEADER_BYTES, &t->headers_too_large);
}

/* --- processes --- */

/* The process id, kept up to date by a fork handler instead of asked of the
 * kernel before every request (getpid is a system call). */
static long current_pid;

static void note_fork(void) { current_pid = (long)getpid(); }

void sentry_processes_init(void) {
  current_pid = (long)getpid();
  pthread_atfork(NULL, NULL, note_fork); /* unregistered by the C library if the core is unloaded */
}

long sentry_pid(void) { return current_pid; }

int sentry_forked(long pid) { return pid != current_pid; }

/* Forgotten objects stay reachable from here, so leak checkers in the child
 * see them as kept, which they are. */
static void **forgotten;
static size_t forgotten_count, forgotten_cap;

void sentry_forget(void *libcurl_object) {
  if (libcurl_object == NULL) return;
  if (forgotten_count == forgotten_cap) {
    size_t cap = forgotten_cap ? forgotten_cap * 2 : 8;
    void **grown = realloc(forgotten, cap * sizeof *grown);
    if (grown == NULL) return; /* then it is merely leaked */
    forgotten = grown;
    forgotten_cap = cap;
  }
  forgotten[forgotten_count++] = libcurl_object;
}

/* --- settings --- */

long sentry_timeout_ms(double seconds) {
  double ms = ceil(seconds * 1000);
  if (!(ms >= 1)) return 1;
  return ms > SENTRY_MAX_TIMEOUT_MS ? SENTRY_MAX_TIMEOUT_MS : (long)ms;
}

/* core.timeout_ms(seconds) -> the milliseconds both transports wait */
int sentry_lua_timeout_ms(lua_State *L) {
  lua_pushinteger(L, sentry_timeout_ms(luaL_checknumber(L, 1)));
  return 1;
}

static void wipe(char *secret) {
  volatile char *p = secret;
  while (p != NULL && *p) *p++ = 0;
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
  lua_pop(L, 1); /* the string stays alive in the options table */
  return s;
}

/* Required: the defaults live in one table, config.DEFAULTS, and arrive filled in. */
static double need_number(lua_State *L, int opts, const char *field) {
  double value;
  lua_getfield(L, opts, field);
  if (lua_type(L, -1) != LUA_TNUMBER) luaL_error(L, "option '%s' must be a number", field);
  value = lua_tonumber(L, -1);
  lua_pop(L, 1);
  return value;
}

static char *copy_string(const char *s) {
  char *copy;
  size_t size;
  if (s == NULL) return NULL;
  size = strlen(s) + 1;
  copy = malloc(size);
  if (copy != NULL) memcpy(copy, s, size);
  return copy;
}

void sentry_settings_retain(sentry_settings *settings) { settings->refs++; }

void sentry_settings_release(sentry_settings *s) {
  if (s == NULL || --s->refs > 0) return;
  if (sentry_forked(s->pid)) {
    sentry_forget(s->share);
  } else if (s->share != NULL) {
    curl_share_cleanup(s->share);
  }
  wipe(s->authorization);
  wipe(s->proxy_password);
  free(s->authorization);
  free(s->user_agent);
  free(s->ca_file);
  free(s->proxy);
  free(s->proxy_username);
  free(s->proxy_password);
  free(s);
}

/* One connection cache, DNS cache and TLS session cache. Single-threaded: no
 * lock callbacks are needed. */
static CURLSH *new_share(void) {
  CURLSH *share = curl_share_init();
  if (share == NULL) return NULL;
  if (curl_share_setopt(share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS) != CURLSHE_OK ||
      curl_share_setopt(share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION) != CURLSHE_OK ||
      curl_share_setopt(share, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT) != CURLSHE_OK) {
    curl_share_cleanup(share);
    return NULL;
  }
  return share;
}

#define USER_AGENT_PREFIX "User-Agent: "

/* prefix + value, a new string (NULL when memory runs out). */
static char *header_line(const char *prefix, const char *value, size_t value_len) {
  size_t prefix_len = strlen(prefix);
  char *line = malloc(prefix_len + value_len + 1);
  if (line == NULL) return NULL;
  memcpy(line, prefix, prefix_len);
  memcpy(line + prefix_len, value, value_len);
  line[prefix_len + value_len] = '\0';
  return line;
}

/* The codings this libcurl decodes, as its CURLOPT_ACCEPT_ENCODING "" offers them. */
static void describe_decoders(char *line, size_t size) {
  const curl_version_info_data *info = curl_version_info(CURLVERSION_NOW);
  const char *codings[3];
  size_t count = 0, i;
  if (info->features & CURL_VERSION_LIBZ) codings[count++] = "deflate, gzip";
#ifdef CURL_VERSION_BROTLI
  if (info->features & CURL_VERSION_BROTLI) codings[count++] = "br";
#endif
#ifdef CURL_VERSION_ZSTD
  if (info->features & CURL_VERSION_ZSTD) codings[count++] = "zstd";
#endif
  line[0] = '\0';
  if (count == 0) return;
  snprintf(line, size, "Accept-Encoding: %s", codings[0]);
  for (i = 1; i < count; i++) {
    size_t used = strlen(line);
    snprintf(line + used, size - used, ", %s", codings[i]);
  }
}

/* The fields are validated before anything is allocated, so a raise leaks nothing. */
sentry_settings *sentry_settings_new(lua_State *L, int index) {
  size_t token_len = 0, user_agent_len = 0;
  const char *token = opt_string(L, index, "token", &token_len);
  const char *user_agent = opt_string(L, index, "user_agent", &user_agent_len);
  const char *ca_file = opt_string(L, index, "ca_file", NULL);
  const char *proxy = opt_string(L, index, "proxy", NULL);
  const char *proxy_username = opt_string(L, index, "proxy_username", NULL);
  const char *proxy_password = opt_string(L, index, "proxy_password", NULL);
  double connect_timeout = need_number(L, index, "connect_timeout");
  double max_body = need_number(L, index, "max_body_bytes");
  sentry_settings *s;
  int ok;

  if (token == NULL || token_len == 0) {
    luaL_error(L, "option 'token' is required");
    return NULL; /* not reached: luaL_error does not return */
  }
  check_header_safe(L, "token", token, token_len);
  if (user_agent != NULL) check_header_safe(L, "user_agent", user_agent, user_agent_len);
  if (!(connect_timeout > 0)) luaL_error(L, "option 'connect_timeout' must be positive");
  if (!(max_body >= 1)) luaL_error(L, "option 'max_body_bytes' must be at least 1");
  lua_getfield(L, index, "insecure");
  ok = lua_toboolean(L, -1);
  lua_pop(L, 1);

  s = calloc(1, sizeof *s);
  if (s == NULL) return NULL;
  s->refs = 1;
  s->pid = sentry_pid();
  s->insecure = ok;
  s->connect_timeout_ms = sentry_timeout_ms(connect_timeout);
  describe_decoders(s->accept_encoding, sizeof s->accept_encoding);
  s->max_body_bytes = max_body >= (double)SIZE_MAX ? SIZE_MAX : (size_t)max_body;
  s->authorization = header_line("Authorization: Bearer ", token, token_len);
  s->share = new_share();
  ok = s->authorization != NULL && s->share != NULL;
  if (ok) {
    s->user_agent = user_agent ? header_line(USER_AGENT_PREFIX, user_agent, user_agent_len) : NULL;
    s->ca_file = copy_string(ca_file);
    s->proxy = copy_string(proxy);
    s->proxy_username = copy_string(proxy_username);
    s->proxy_password = copy_string(proxy_password);
    ok = (!user_agent || s->user_agent) && (!ca_file || s->ca_file) && (!proxy || s->proxy) &&
         (!proxy_username || s->proxy_username) && (!proxy_password || s->proxy_password);
  }
  if (!ok) {
    sentry_settings_release(s);
    return NULL;
  }
  return s;
}

/* --- the easy handle --- */

#define SET(option, value)                                                        \
  do {                                                                            \
    if (curl_easy_setopt(t->curl, option, value) != CURLE_OK)                     \
      luaL_error(L, "libcurl refused option %s", #option);                        \
  } while (0)

/* In a child process, the first handle made or renewed gives the client a
 * connection cache of its own; the parent's is forgotten. */
static void own_share(lua_State *L, sentry_settings *s) {
  CURLSH *share;
  if (!sentry_forked(s->pid)) return;
  share = new_share();
  if (share == NULL) luaL_error(L, "libcurl could not create a connection cache");
  sentry_forget(s->share);
  s->share = share;
  s->pid = sentry_pid();
}

/* Does the environment name a proxy for libcurl (it reads these itself)? */
static int proxy_in_environment(void) {
  static const char *const names[] = {"http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY",
                                      "all_proxy",  "ALL_PROXY",  "no_proxy",    "NO_PROXY"};
  size_t i;
  for (i = 0; i < sizeof names / sizeof names[0]; i++) {
    if (getenv(names[i]) != NULL) return 1;
  }
  return 0;
}

/* Makes the easy handle with the client's settings. */
static void new_easy(lua_State *L, sentry_transfer *t) {
  sentry_settings *s = t->settings;
  own_share(L, s);
  t->pid = sentry_pid();
  t->curl = curl_easy_init();
  if (t->curl == NULL) {
    luaL_error(L, "libcurl could not create a handle");
    return; /* not reached: luaL_error does not return */
  }
  SET(CURLOPT_SHARE, s->share);
  SET(CURLOPT_NOSIGNAL, 1L);
  SET(CURLOPT_ERRORBUFFER, t->error);
  SET(CURLOPT_WRITEFUNCTION, on_body);
  SET(CURLOPT_WRITEDATA, (void *)t);
  SET(CURLOPT_HEADERFUNCTION, on_header);
  SET(CURLOPT_HEADERDATA, (void *)t);
  SET(CURLOPT_PRIVATE, (void *)t);
  SET(CURLOPT_ACCEPT_ENCODING, ""); /* every encoding this libcurl decodes, gzip included */
  SET(CURLOPT_FOLLOWLOCATION, 0L);
  SET(CURLOPT_PATH_AS_IS, 1L); /* the path checked in Lua is the path sent: no dot-segment squashing */
  SET(CURLOPT_TCP_KEEPALIVE, 1L);
  /* Concurrent transfers wait for a connection being set up that may carry
   * HTTP/2 rather than open their own: a batch makes one TLS handshake. */
  SET(CURLOPT_PIPEWAIT, 1L);
  SET(CURLOPT_CONNECTTIMEOUT_MS, s->connect_timeout_ms);
#if LIBCURL_VERSION_NUM >= 0x075500
  SET(CURLOPT_PROTOCOLS_STR, "http,https");
#else
  SET(CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
  if (s->ca_file != NULL) SET(CURLOPT_CAINFO, s->ca_file);
  if (s->proxy != NULL || proxy_in_environment()) {
    if (s->proxy != NULL) SET(CURLOPT_PROXY, s->proxy);
    /* for a CONNECT to the proxy; the request itself carries our own line,
     * and libcurl then adds no second one */
    if (s->user_agent != NULL) SET(CURLOPT_USERAGENT, s->user_agent + strlen(USER_AGENT_PREFIX));
  } else {
    /* no proxy: said once, so libcurl does not look for one in the
     * environment on every request */
    SET(CURLOPT_PROXY, "");
    SET(CURLOPT_NOPROXY, "");
  }
  if (s->proxy_username != NULL) SET(CURLOPT_PROXYUSERNAME, s->proxy_username);
  if (s->proxy_password != NULL) SET(CURLOPT_PROXYPASSWORD, s->proxy_password);
  if (s->insecure) {
    SET(CURLOPT_SSL_VERIFYPEER, 0L);
    SET(CURLOPT_SSL_VERIFYHOST, 0L);
  }
}

void sentry_transfer_init(lua_State *L, sentry_transfer *t, sentry_settings *s) {
  t->settings = s;
  sentry_settings_retain(s);
  new_easy(L, t);
}

/* In a child process: an easy handle of its own, the parent's forgotten. */
static void adopt_after_fork(lua_State *L, sentry_transfer *t) {
  sentry_forget(t->curl);
  t->curl = NULL;
  new_easy(L, t);
}

void sentry_transfer_cleanup(sentry_transfer *t) {
  if (sentry_forked(t->pid)) {
    sentry_forget(t->curl);
  } else if (t->curl != NULL) {
    curl_easy_cleanup(t->curl);
  }
  t->curl = NULL;
  curl_slist_free_all(t->request_headers);
  t->request_headers = NULL;
  t->request_headers_built = 0;
  buffer_free(&t->body);
  buffer_free(&t->header_block);
  buffer_free(&t->header_lines);
  buffer_free(&t->built_lines);
  sentry_settings_release(t->settings);
  t->settings = NULL;
}

static void check_method(lua_State *L, int index, const char *method, size_t len) {
  size_t i;
  if (len == 0 || len > 32) luaL_argerror(L, index, "not an HTTP method");
  for (i = 0; i < len; i++) {
    if (!sentry_is_tchar((unsigned char)method[i])) luaL_argerror(L, index, "not an HTTP method");
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

/* Headers that frame the message or steer the connection: a caller's value
 * could make the server read a second request (with the next request's
 * Authorization header) out of this one's body. */
static const char *const TRANSPORT_HEADERS[] = {
    "content-length", "transfer-encoding", "host", "connection", "keep-alive", "proxy-connection",
    "te", "trailer", "upgrade", "proxy-authorization", "http2-settings"};

static void check_header(lua_State *L, const char *name, size_t name_len, const char *value,
                         size_t value_len) {
  size_t i;
  if (name_len == 0) luaL_error(L, "header name is empty");
  for (i = 0; i < name_len; i++) {
    if (!sentry_is_tchar((unsigned char)name[i])) {
      luaL_error(L, "header name '%s' has a character not allowed in a header name", name);
    }
  }
  if (sentry_header_name_is(name, name_len, "authorization")) {
    luaL_error(L, "the Authorization header is set from the client's token");
  }
  for (i = 0; i < sizeof TRANSPORT_HEADERS / sizeof TRANSPORT_HEADERS[0]; i++) {
    if (sentry_header_name_is(name, name_len, TRANSPORT_HEADERS[i])) {
      luaL_error(L, "the %s header is set by the transport (it frames the request or the connection); "
                    "remove it from opts.headers", name);
    }
  }
  check_header_safe(L, "header value", value, value_len);
}

static void append_header(lua_State *L, sentry_transfer *t, const char *line) {
  struct curl_slist *grown = curl_slist_append(t->request_headers, line);
  if (grown == NULL) {
    luaL_error(L, "out of memory");
    return; /* not reached: luaL_error does not return */
  }
  t->request_headers = grown;
}

static void add_line_part(lua_State *L, sentry_transfer *t, const char *s, size_t n) {
  if (!buffer_append(&t->header_lines, s, n, 256)) luaL_error(L, "out of memory");
}

/* Checks each header of the table at `headers`; with a transfer, also adds it
 * to the transfer's header lines. */
static void take_headers(lua_State *L, int headers, sentry_transfer *t) {
  if (lua_isnoneornil(L, headers)) return;
  luaL_checktype(L, headers, LUA_TTABLE);
  lua_pushnil(L);
  while (lua_next(L, headers) != 0) {
    size_t name_len, value_len;
    const char *name, *value;
    if (lua_type(L, -2) != LUA_TSTRING || lua_type(L, -1) != LUA_TSTRING) {
      luaL_error(L, "header names and values must be strings");
    }
    name = lua_tolstring(L, -2, &name_len);
    value = lua_tolstring(L, -1, &value_len);
    check_header(L, name, name_len, value, value_len);
    if (t != NULL) {
      /* "Name:" alone would delete a default header; "Name;" sends it empty. */
      add_line_part(L, t, name, name_len);
      if (value_len) {
        add_line_part(L, t, ": ", 2);
        add_line_part(L, t, value, value_len);
      } else {
        add_line_part(L, t, ";", 1);
      }
      add_line_part(L, t, "", 1); /* the NUL that ends the line */
    }
    lua_pop(L, 1);
  }
}

/* Does one of the caller's lines (NUL-separated "Name: value" or "Name;")
 * name the header `lower`? */
static int caller_sends(const sentry_buffer *lines, const char *lower) {
  size_t at = 0;
  while (at < lines->len) {
    const char *line = lines->data + at;
    size_t len = strlen(line);
    if (sentry_header_name_is(line, strcspn(line, ":;"), lower)) return 1;
    at += len + 1;
  }
  return 0;
}

/* Builds the request's header list into the transfer, so an error midway
 * leaks nothing; the list of the previous request is kept when the caller's
 * lines are the same. */
static void build_request_headers(lua_State *L, sentry_transfer *t, int headers) {
  size_t at = 0;
  sentry_buffer swap;
  t->header_lines.len = 0;
  take_headers(L, headers, t);
  if (t->request_headers_built && t->header_lines.len == t->built_lines.len &&
      (t->header_lines.len == 0 || memcmp(t->header_lines.data, t->built_lines.data, t->header_lines.len) == 0)) {
    return;
  }
  curl_slist_free_all(t->request_headers);
  t->request_headers = NULL;
  t->request_headers_built = 0; /* until the new list is complete */
  append_header(L, t, t->settings->authorization);
  append_header(L, t, "Expect:");
  while (at < t->header_lines.len) {
    const char *line = t->header_lines.data + at;
    append_header(L, t, line);
    at += strlen(line) + 1;
  }
  /* a caller's own line wins; CURLOPT_ACCEPT_ENCODING still has libcurl decode */
  if (t->settings->user_agent && !caller_sends(&t->header_lines, "user-agent")) {
    append_header(L, t, t->settings->user_agent);
  }
  if (t->settings->accept_encoding[0] && !caller_sends(&t->header_lines, "accept-encoding")) {
    append_header(L, t, t->settings->accept_encoding);
  }
  swap = t->built_lines;
  t->built_lines = t->header_lines;
  t->header_lines = swap;
  t->request_headers_built = 1;
}

void sentry_transfer_prepare(lua_State *L, sentry_transfer *t, int index) {
  size_t method_len, url_len, body_len = 0;
  const char *method = luaL_checklstring(L, index, &method_len);
  const char *url = luaL_checklstring(L, index + 1, &url_len);
  const char *body = luaL_optlstring(L, index + 3, NULL, &body_len);
  double timeout = luaL_optnumber(L, index + 4, 30);

  check_method(L, index, method, method_len);
  check_url(L, url, url_len);
  if (!(timeout > 0)) luaL_argerror(L, index + 4, "timeout must be positive");
  if (sentry_forked(t->pid)) adopt_after_fork(L, t);
  build_request_headers(L, t, index + 2);
  t->started_at = sentry_wall_clock();

  SET(CURLOPT_URL, url);
  SET(CURLOPT_HTTPHEADER, t->request_headers);
  SET(CURLOPT_TIMEOUT_MS, sentry_timeout_ms(timeout));
  SET(CURLOPT_HTTPGET, 1L); /* clears the previous request's method and body */
  SET(CURLOPT_NOBODY, 0L);
  SET(CURLOPT_CUSTOMREQUEST, (char *)NULL);
  if (strcmp(method, "HEAD") == 0) {
    SET(CURLOPT_NOBODY, 1L);
  } else if (body != NULL || strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0 ||
             strcmp(method, "PATCH") == 0) {
    /* Copied: a multi transfer outlives the Lua call that started it. */
    SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
    SET(CURLOPT_COPYPOSTFIELDS, body != NULL ? body : "");
    if (strcmp(method, "POST") != 0) SET(CURLOPT_CUSTOMREQUEST, method);
  } else if (strcmp(method, "GET") != 0) {
    SET(CURLOPT_CUSTOMREQUEST, method);
  }
  t->body.len = t->header_block.len = 0;
  t->body_too_large = t->headers_too_large = t->out_of_memory = t->headers_complete = 0;
  t->error[0] = '\0';
}

/* --- results --- */

typedef struct {
  lua_State *L;
  int table;
  int repeats; /* name -> list of its values, for names seen more than once; 0 until one is */
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
    lua_rawset(L, walk->table);
    return 0;
  }
  /* A repeated field: its values are listed and joined once, after the walk
   * (joining on every line copies the growing value each time: quadratic). */
  if (walk->repeats == 0) { /* made on the first repeat, just above the headers table */
    lua_newtable(L);
    lua_insert(L, walk->table + 1);
    walk->repeats = walk->table + 1;
  }
  lua_pushvalue(L, -2);
  lua_rawget(L, walk->repeats); /* name, first, list or nil */
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    lua_createtable(L, 4, 0);
    lua_pushvalue(L, -2);
    lua_rawseti(L, -2, 1);
    lua_pushvalue(L, -3);
    lua_pushvalue(L, -2);
    lua_rawset(L, walk->repeats);
  }
  lua_pushlstring(L, value, value_len);
  lua_rawseti(L, -2, (int)lua_rawlen(L, -2) + 1);
  lua_pop(L, 3);
  return 0;
}

/* Sets each repeated field to its values joined with ", " (RFC 9110 5.3). */
static void join_repeats(header_walk *walk) {
  lua_State *L = walk->L;
  lua_pushnil(L);
  while (lua_next(L, walk->repeats) != 0) {
    int list = lua_gettop(L);
    int i, n = (int)lua_rawlen(L, list);
    luaL_Buffer b;
    lua_pushvalue(L, list - 1);
    luaL_buffinit(L, &b);
    for (i = 1; i <= n; i++) {
      if (i > 1) luaL_addlstring(&b, ", ", 2);
      lua_rawgeti(L, list, i);
      luaL_addvalue(&b);
    }
    luaL_pushresult(&b);
    lua_rawset(L, walk->table);
    lua_pop(L, 1);
  }
}

/* Pushes the table of a header block's fields, names lower-cased, repeats
 * joined: the one reading of headers both transports use. */
static void push_headers(lua_State *L, const char *block, size_t len, sentry_rate_limit *rate_limit) {
  header_walk walk;
  lua_createtable(L, 0, 16);
  walk.L = L;
  walk.table = lua_gettop(L);
  walk.repeats = 0;
  walk.rate_limit = rate_limit;
  sentry_headers_each(block, len, push_header, &walk);
  if (walk.repeats != 0) {
    join_repeats(&walk);
    lua_pop(L, 1);
  }
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

static int push_transport_error(lua_State *L, sentry_transfer *t, CURLcode rc) {
  char too_large[96];
  const char *code;
  const char *message = t->error[0] ? t->error : curl_easy_strerror(rc);
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
    case CURLE_OUT_OF_MEMORY:
      /* libcurl also says "Out of memory" when one header line passes its limit. */
      code = "too_large";
      message = "a response header line is longer than libcurl accepts (100 KiB), or memory ran out";
      break;
    default: code = "network"; break;
  }
  if (t->body_too_large) {
    code = "too_large";
    snprintf(too_large, sizeof too_large, SENTRY_BODY_TOO_LARGE_FORMAT, (double)t->settings->max_body_bytes);
    message = too_large;
  } else if (t->headers_too_large) {
    code = "too_large";
    message = SENTRY_HEADERS_TOO_LARGE_MESSAGE;
  } else if (t->out_of_memory) {
    code = "network";
    message = "out of memory while receiving the response";
  }
  lua_pushnil(L);
  lua_pushstring(L, message);
  lua_pushstring(L, code);
  return 3;
}

int sentry_transfer_push_result(lua_State *L, sentry_transfer *t, CURLcode rc) {
  double received_at = sentry_wall_clock();
  long status = 0;
  sentry_rate_limit rate_limit;
  if (rc == CURLE_OK && !t->headers_complete) {
    /* libcurl takes a header section cut by the connection closing as a
     * response; its status and rate-limit headers cannot be trusted. */
    rc = CURLE_RECV_ERROR;
    snprintf(t->error, sizeof t->error, "%s", SENTRY_CUT_HEADERS_MESSAGE);
  }
  if (rc != CURLE_OK) {
    buffer_release_if_large(&t->body);
    buffer_release_if_large(&t->header_block);
    return push_transport_error(L, t, rc);
  }
  curl_easy_getinfo(t->curl, CURLINFO_RESPONSE_CODE, &status);

  lua_createtable(L, 0, 8);
  lua_pushinteger(L, (lua_Integer)status);
  lua_setfield(L, -2, "status");
  lua_pushlstring(L, t->body.data ? t->body.data : "", t->body.len);
  lua_setfield(L, -2, "body");
  set_number(L, "received_at", received_at);

  memset(&rate_limit, 0, sizeof rate_limit);
  push_headers(L, t->header_block.data, t->header_block.len, &rate_limit);
  lua_setfield(L, -2, "headers");
  sentry_rate_limit_finish(&rate_limit, t->started_at, received_at);
  if (rate_limit.present) {
    push_rate_limit(L, &rate_limit);
    lua_setfield(L, -2, "rate_limit");
  }
  if (rate_limit.has_retry_after) set_number(L, "retry_after", rate_limit.retry_after);
  if (rate_limit.has_date) set_number(L, "clock_skew", rate_limit.clock_skew);
  buffer_release_if_large(&t->body);
  buffer_release_if_large(&t->header_block);
  lua_pushnil(L);
  lua_pushnil(L);
  return 3;
}

/* --- for transports that do their own I/O (nginx cosockets) --- */

/* core.check_request(method, url, headers, token): the same checks a libcurl
 * request gets, raising on what cannot be sent safely. */
int sentry_lua_check_request(lua_State *L) {
  size_t method_len, url_len, token_len;
  const char *method = luaL_checklstring(L, 1, &method_len);
  const char *url = luaL_checklstring(L, 2, &url_len);
  const char *token = luaL_optlstring(L, 4, "", &token_len);
  check_method(L, 1, method, method_len);
  check_url(L, url, url_len);
  check_header_safe(L, "token", token, token_len);
  take_headers(L, 3, NULL);
  return 0;
}

/* core.read_rate_limit(headers, sent_at, received_at) -> rate_limit|nil, retry_after|nil, clock_skew|nil,
 * from a table of lower-case header names: the parsing libcurl responses get. */
int sentry_lua_read_rate_limit(lua_State *L) {
  sentry_rate_limit rate_limit;
  double sent_at = luaL_checknumber(L, 2), received_at = luaL_checknumber(L, 3);
  luaL_checktype(L, 1, LUA_TTABLE);
  memset(&rate_limit, 0, sizeof rate_limit);
  lua_pushnil(L);
  while (lua_next(L, 1) != 0) {
    if (lua_type(L, -2) == LUA_TSTRING && lua_type(L, -1) == LUA_TSTRING) {
      size_t name_len, value_len;
      const char *name = lua_tolstring(L, -2, &name_len);
      const char *value = lua_tolstring(L, -1, &value_len);
      sentry_rate_limit_observe(&rate_limit, name, name_len, value, value_len);
    }
    lua_pop(L, 1);
  }
  sentry_rate_limit_finish(&rate_limit, sent_at, received_at);
  if (rate_limit.present) {
    push_rate_limit(L, &rate_limit);
  } else {
    lua_pushnil(L);
  }
  if (rate_limit.has_retry_after) {
    lua_pushnumber(L, rate_limit.retry_after);
  } else {
    lua_pushnil(L);
  }
  if (rate_limit.has_date) {
    lua_pushnumber(L, rate_limit.clock_skew);
  } else {
    lua_pushnil(L);
  }
  return 3;
}

/* core.parse_headers(block) -> the headers table of a libcurl response, from
 * the raw "Name: value" lines of a header section. */
int sentry_lua_parse_headers(lua_State *L) {
  size_t len;
  const char *block = luaL_checklstring(L, 1, &len);
  sentry_rate_limit unused;
  memset(&unused, 0, sizeof unused);
  push_headers(L, block, len, &unused);
  return 1;
}
