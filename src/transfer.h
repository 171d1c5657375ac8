/* One HTTP exchange on a libcurl easy handle: options shared by a client's
 * handles, the buffers libcurl fills, and turning the outcome into Lua values.
 * Used by the blocking handle (client.c) and the multi engine (engine.c). */
#ifndef SENTRY_TRANSFER_H
#define SENTRY_TRANSFER_H

#include "compat.h"

#include <curl/curl.h>
#include <stddef.h>

/* Limits every transport keeps, and their errors (the cosocket transport reads
 * them from the core). */
#define SENTRY_MAX_HEADER_KIB 256 /* below libcurl's own 300 KiB: the error is ours */
#define SENTRY_MAX_HEADER_BYTES (SENTRY_MAX_HEADER_KIB * 1024)
#define SENTRY_TEXT_OF(x) #x
#define SENTRY_TEXT(x) SENTRY_TEXT_OF(x)
#define SENTRY_HEADERS_TOO_LARGE_MESSAGE \
  "the response headers are larger than " SENTRY_TEXT(SENTRY_MAX_HEADER_KIB) " KiB"
#define SENTRY_BODY_TOO_LARGE_FORMAT "the response body is larger than max_body_bytes (%.0f bytes)"
/* Timeouts in milliseconds: at least 1, since 0 means "no timeout" to libcurl
 * (300 s to connect) and nginx's default (60 s) to cosockets; at most 2^31 - 1,
 * the most a cosocket (and a 32-bit long) takes, as timeout = math.huge is allowed. */
#define SENTRY_MAX_TIMEOUT_MS 2147483647L
long sentry_timeout_ms(double seconds);
/* The error for a response whose header section the connection cut short. */
#define SENTRY_CUT_HEADERS_MESSAGE \
  "the connection closed before the end of the response headers; the partial response is not used"

typedef struct {
  char *data;
  size_t len, cap;
} sentry_buffer;

/* What every easy handle of one client is configured with. Reference counted:
 * the client and each of its engines hold one reference. */
typedef struct {
  int refs;
  long pid;             /* the process the share belongs to (see sentry_forked) */
  CURLSH *share;        /* one connection cache, DNS cache and TLS sessions per client */
  char *authorization;  /* the bearer header line; wiped when freed */
  char *ca_file, *proxy, *proxy_username, *proxy_password;
  /* "User-Agent: ..." and "Accept-Encoding: ..." (what this libcurl decodes;
   * "" when nothing), sent as lines of our own: libcurl formats its own a
   * byte at a time on every request (2k and 4k instructions). With a proxy,
   * libcurl also gets the User-Agent for its CONNECT requests. */
  char *user_agent;
  char accept_encoding[64];
  long connect_timeout_ms;
  int insecure;
  size_t max_body_bytes;
} sentry_settings;

typedef struct {
  CURL *curl;
  long pid;                           /* the process that made curl */
  sentry_settings *settings;
  struct curl_slist *request_headers; /* owned here: libcurl borrows it during the transfer */
  /* The caller's header lines, each "Name: value" and a NUL: those of the
   * request being prepared, and those request_headers was built from (kept
   * while they do not change, which is the usual case). */
  sentry_buffer header_lines, built_lines;
  int request_headers_built; /* request_headers is complete and made from built_lines */
  sentry_buffer body;
  sentry_buffer header_block;         /* the final response's raw header lines */
  int body_too_large, headers_too_large, out_of_memory;
  int headers_complete; /* the final header section ended with its blank line */
  double started_at;    /* wall clock when the request was prepared: Date is later */
  char error[CURL_ERROR_SIZE];
} sentry_transfer;

/* After fork, a child must not use its parent's connections (both would read
 * each other's responses) nor close them (libcurl's cleanup may send a TLS
 * close_notify on the parent's socket). libcurl objects made by another
 * process are "forgotten" instead: kept, never used again, never cleaned up. */
int sentry_forked(long pid);
long sentry_pid(void);             /* this process's id */
void sentry_processes_init(void);  /* once, before any of the above */
void sentry_forget(void *libcurl_object);

/* Reads the options table at `index` into new settings (raises on bad values). */
sentry_settings *sentry_settings_new(lua_State *L, int index);
void sentry_settings_retain(sentry_settings *settings);
void sentry_settings_release(sentry_settings *settings);

/* Creates the easy handle with the client's settings; raises on failure. */
void sentry_transfer_init(lua_State *L, sentry_transfer *t, sentry_settings *settings);
void sentry_transfer_cleanup(sentry_transfer *t);

/* Sets up one request from the Lua arguments at method_index.. (method, url,
 * headers, body, timeout); raises on arguments that cannot be sent safely. */
void sentry_transfer_prepare(lua_State *L, sentry_transfer *t, int method_index);

/* After the transfer: pushes three values, the response table, nil, nil or
 * nil, message, code; returns 3. */
int sentry_transfer_push_result(lua_State *L, sentry_transfer *t, CURLcode rc);

/* Lua functions for transports that do their own I/O (see transfer.c). */
int sentry_lua_check_request(lua_State *L);
int sentry_lua_read_rate_limit(lua_State *L);
int sentry_lua_parse_headers(lua_State *L);
int sentry_lua_timeout_ms(lua_State *L);

#endif
