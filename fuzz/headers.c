/* sentry_headers_each over arbitrary header blocks, feeding each header to
 * sentry_rate_limit_observe as the client does. Checks, besides memory safety:
 * every name and value lies inside the block; names are non-empty HTTP tokens
 * followed by ':'; values have no line break and no surrounding blanks; a
 * callback that asks to stop is not called again. */
#include "headers.h"
#include "ratelimit.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  const char *block;
  size_t len;
  size_t calls, stop_after;
  sentry_rate_limit rl;
} walk;

static int inside(const walk *w, const char *p, size_t n) {
  return p >= w->block && n <= w->len && (size_t)(p - w->block) <= w->len - n;
}

static int on_header(void *userdata, const char *name, size_t name_len, const char *value,
                     size_t value_len) {
  walk *w = userdata;
  size_t i;
  if (w->stop_after && w->calls >= w->stop_after) abort(); /* called after asking to stop */
  w->calls++;
  if (name_len == 0 || !inside(w, name, name_len) || !inside(w, value, value_len)) abort();
  for (i = 0; i < name_len; i++) {
    if (!sentry_is_tchar((unsigned char)name[i])) abort();
  }
  if (name[name_len] != ':') abort(); /* inside() proved there is a byte after the name */
  for (i = 0; i < value_len; i++) {
    if (value[i] == '\n') abort();
  }
  if (value_len > 0 && (value[0] == ' ' || value[0] == '\t' || value[value_len - 1] == ' ' ||
                        value[value_len - 1] == '\t'))
    abort();
  sentry_rate_limit_observe(&w->rl, name, name_len, value, value_len);
  return w->stop_after && w->calls >= w->stop_after;
}

static void check_count(const sentry_rate_limit *rl, unsigned bit, double value) {
  if ((rl->present & bit) && !(value >= 0 && isfinite(value))) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  walk w;
  size_t all;
  memset(&w, 0, sizeof w);
  w.block = (const char *)data;
  w.len = size;
  sentry_headers_each(w.block, w.len, on_header, &w);
  sentry_rate_limit_finish(&w.rl, 1700000000.25, 1700000000.5);
  check_count(&w.rl, SENTRY_RL_LIMIT, w.rl.limit);
  check_count(&w.rl, SENTRY_RL_REMAINING, w.rl.remaining);
  check_count(&w.rl, SENTRY_RL_RESET, w.rl.reset);
  check_count(&w.rl, SENTRY_RL_CONCURRENT_LIMIT, w.rl.concurrent_limit);
  check_count(&w.rl, SENTRY_RL_CONCURRENT_REMAINING, w.rl.concurrent_remaining);
  if (w.rl.has_retry_after && !isfinite(w.rl.retry_after)) abort();
  if (w.rl.has_date && !(w.rl.date >= 0 && isfinite(w.rl.date))) abort();
  if (!isfinite(w.rl.clock_skew) || (!w.rl.has_date && w.rl.clock_skew != 0)) abort();

  /* The same walk, asked to stop after the first header, makes exactly one call. */
  all = w.calls;
  memset(&w.rl, 0, sizeof w.rl);
  w.calls = 0;
  w.stop_after = 1;
  sentry_headers_each(w.block, w.len, on_header, &w);
  if (w.calls != (all > 0 ? 1u : 0u)) abort();
  return 0;
}
