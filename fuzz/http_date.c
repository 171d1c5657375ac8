/* sentry_parse_http_date (Date, Retry-After) on arbitrary bytes, and a round
 * trip: an instant taken from the input, written in each of RFC 9110's three
 * forms, must parse back to the same second. */
#define _POSIX_C_SOURCE 200809L
#include "ratelimit.h"

#include "input.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define YEAR_10000 253402300800.0 /* 10000-01-01T00:00:00Z */

static void round_trip(time_t t, const char *format, size_t expected_len) {
  struct tm tm;
  char text[64];
  size_t len;
  double parsed = -1;
  if (gmtime_r(&t, &tm) == NULL) abort();
  len = strftime(text, sizeof text, format, &tm);
  if (len != expected_len) abort(); /* the C locale's names are three letters */
  if (!sentry_parse_http_date(text, len, &parsed)) abort();
  if (parsed != (double)t) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  double epoch = -1;
  fuzz_input in;
  time_t t;
  struct tm tm;
  if (sentry_parse_http_date((const char *)data, size, &epoch)) {
    /* a leap second (:60) on the last day of 9999 reaches YEAR_10000 itself */
    if (!isfinite(epoch) || epoch < 0 || epoch > YEAR_10000 || epoch != floor(epoch)) abort();
  } else if (epoch != -1) {
    abort(); /* a refusal leaves the output alone */
  }

  in.data = data;
  in.left = size;
  t = (time_t)fuzz_range(&in, 0, (int64_t)YEAR_10000 - 1);
  round_trip(t, "%a, %d %b %Y %H:%M:%S GMT", 29);      /* IMF-fixdate */
  round_trip(t, "%a %b %e %H:%M:%S %Y", 24);           /* asctime */
  if (gmtime_r(&t, &tm) != NULL && tm.tm_year >= 70 && tm.tm_year < 170) {
    /* RFC 850: two-digit years, read as 1970-2069; the weekday name is long */
    char text[64];
    double parsed = -1;
    size_t len = strftime(text, sizeof text, "%A, %d-%b-%y %H:%M:%S GMT", &tm);
    if (!sentry_parse_http_date(text, len, &parsed) || parsed != (double)t) abort();
  }
  return 0;
}
