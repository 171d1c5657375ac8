/* The retry policy: a header block read like a response's (sentry_headers_each
 * -> sentry_rate_limit_observe -> sentry_rate_limit_finish), then
 * sentry_retry_decide with a policy, attempt count, status and transport
 * outcome taken from the input, within what sentry.new accepts. Checks the
 * decision is coherent: a number, never negative, within max_retry_wait when it
 * says retry, a reason whenever it is not done, and every 429 handled. */
#include "headers.h"
#include "ratelimit.h"

#include "input.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static int observe(void *userdata, const char *name, size_t name_len, const char *value,
                   size_t value_len) {
  sentry_rate_limit_observe(userdata, name, name_len, value, value_len);
  return 0;
}

/* A non-negative option value: usually modest, sometimes 0, huge or infinite. */
static double option(fuzz_input *in, double typical) {
  switch (fuzz_range(in, 0, 7)) {
    case 0: return 0;
    case 1: return INFINITY;
    case 2: return fuzz_double(in, 0, 1e12);
    default: return fuzz_double(in, 0, typical);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const int statuses[] = {0, 200, 204, 302, 400, 401, 403, 404, 429, 500,
                                 502, 503, 504, 507, 524, 599};
  fuzz_input in;
  sentry_retry_policy policy;
  sentry_rate_limit rl;
  sentry_retry_decision d;
  sentry_transport_outcome outcome;
  double sent_at, received_at, now, random01;
  int attempts, idempotent, status;
  size_t header_len;

  in.data = data;
  in.left = size;
  policy.max_retries = (int)fuzz_range(&in, 0, 100000);
  policy.max_retry_wait = option(&in, 120);
  policy.backoff_base = option(&in, 5);
  policy.backoff_factor = option(&in, 4);
  if (policy.backoff_factor == 0) policy.backoff_factor = 2; /* must be > 0 */
  policy.backoff_cap = option(&in, 60);
  policy.reset_margin = fuzz_double(&in, 0, 1);
  policy.retry_unsafe = (int)fuzz_range(&in, 0, 1);
  attempts = (int)fuzz_range(&in, 1, (int64_t)policy.max_retries + 2);
  idempotent = (int)fuzz_range(&in, 0, 1);
  status = fuzz_range(&in, 0, 3) == 0 ? (int)fuzz_range(&in, 100, 999)
                                      : statuses[fuzz_range(&in, 0, 15)];
  outcome = status ? SENTRY_TRANSPORT_OK : (sentry_transport_outcome)fuzz_range(&in, 0, 4);
  received_at = fuzz_double(&in, 1.6e9, 1.8e9);
  sent_at = received_at - fuzz_double(&in, 0, 60);
  now = received_at + fuzz_double(&in, -5, 100);
  random01 = fuzz_double(&in, 0, 0.9999999);

  /* The rest of the input is the response's header block. */
  memset(&rl, 0, sizeof rl);
  header_len = in.left;
  if (status) sentry_headers_each((const char *)in.data, header_len, observe, &rl);
  sentry_rate_limit_finish(&rl, sent_at, received_at);

  d = sentry_retry_decide(&policy, attempts, idempotent, status, outcome, &rl, received_at, now,
                          random01);
  if (d.action != SENTRY_DONE && d.action != SENTRY_RETRY && d.action != SENTRY_EXHAUSTED &&
      d.action != SENTRY_TOO_LONG)
    abort();
  if (isnan(d.wait) || d.wait < 0) abort();
  if (d.action != SENTRY_DONE && d.reason == NULL) abort();
  if (status == 429 && d.action == SENTRY_DONE) abort();
  if (d.action == SENTRY_RETRY && (d.wait > policy.max_retry_wait || attempts > policy.max_retries))
    abort();
  if (d.action == SENTRY_EXHAUSTED && attempts <= policy.max_retries) abort();
  if (outcome == SENTRY_TRANSPORT_FATAL && status == 0 && d.action != SENTRY_DONE) abort();
  return 0;
}
