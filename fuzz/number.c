/* sentry_parse_number (rate-limit counts, Reset, delta-seconds Retry-After).
 * Accepts exactly 1-15 digits with an optional "." and 1+ digits, nothing
 * else; the value matches strtod's within rounding and the ignored digits
 * past the ninth decimal. */
#include "ratelimit.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static int is_digit(uint8_t c) { return c >= '0' && c <= '9'; }

/* The documented grammar: [0-9]{1,15}(\.[0-9]+)? */
static int grammar_ok(const uint8_t *s, size_t len) {
  size_t i = 0, whole = 0;
  while (i < len && is_digit(s[i])) i++, whole++;
  if (whole == 0 || whole > 15) return 0;
  if (i == len) return 1;
  if (s[i++] != '.' || i == len) return 0;
  while (i < len && is_digit(s[i])) i++;
  return i == len;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  double value = -1, reference;
  char copy[64];
  int ok = sentry_parse_number((const char *)data, size, &value);
  if (ok != grammar_ok(data, size)) abort();
  if (!ok) {
    if (value != -1) abort(); /* a refusal leaves the output alone */
    return 0;
  }
  if (!(value >= 0) || !isfinite(value) || value > 1e15) abort();
  if (size < sizeof copy) {
    memcpy(copy, data, size);
    copy[size] = '\0';
    reference = strtod(copy, NULL);
    if (fabs(reference - value) > 1e-9 + reference * 1e-14) abort();
  }
  return 0;
}
