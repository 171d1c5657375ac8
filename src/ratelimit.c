#include "ratelimit.h"

#include "headers.h"

#include <math.h>
#include <string.h>

#define MAX_DIGITS 15 /* keeps every value exact in a double */

int sentry_parse_number(const char *s, size_t len, double *out) {
  double value = 0, scale = 1;
  size_t i = 0, digits = 0;
  while (i < len && s[i] >= '0' && s[i] <= '9') {
    if (++digits > MAX_DIGITS) return 0;
    value = value * 10 + (s[i++] - '0');
  }
  if (digits == 0) return 0;
  if (i < len && s[i] == '.') {
    size_t fraction = 0;
    for (i++; i < len && s[i] >= '0' && s[i] <= '9'; i++) {
      if (++fraction > 9) continue; /* finer than a nanosecond means nothing here */
      scale /= 10;
      value += (s[i] - '0') * scale;
    }
    if (fraction == 0) return 0;
  }
  if (i != len) return 0;
  *out = value;
  return 1;
}

static int parse_digits(const char *s, size_t len, int *out) {
  int value = 0;
  size_t i;
  if (len == 0 || len > 4) return 0;
  for (i = 0; i < len; i++) {
    if (s[i] < '0' || s[i] > '9') return 0;
    value = value * 10 + (s[i] - '0');
  }
  *out = value;
  return 1;
}

static int parse_month(const char *s) {
  static const char names[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
  int m;
  for (m = 0; m < 12; m++) {
    if (memcmp(names + 3 * m, s, 3) == 0) return m + 1;
  }
  return 0;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm). */
static double days_from_civil(int year, int month, int day) {
  int era, yoe, doy, doe;
  year -= month <= 2;
  era = (year >= 0 ? year : year - 399) / 400;
  yoe = year - era * 400;
  doy = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1;
  doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return (double)era * 146097 + doe - 719468;
}

/* "HH:MM:SS" at s. */
static int parse_clock(const char *s, size_t len, int *h, int *m, int *sec) {
  return len == 8 && s[2] == ':' && s[5] == ':' && parse_digits(s, 2, h) &&
         parse_digits(s + 3, 2, m) && parse_digits(s + 6, 2, sec) && *h < 24 && *m < 60 &&
         *sec <= 60;
}

static int make_epoch(int year, int month, int day, int h, int m, int sec, double *epoch) {
  static const int month_days[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (month < 1 || day < 1 || day > month_days[month - 1] || year < 1970) return 0;
  *epoch = days_from_civil(year, month, day) * 86400.0 + h * 3600 + m * 60 + sec;
  return 1;
}

int sentry_parse_http_date(const char *s, size_t len, double *epoch) {
  int day, month, year, h, m, sec;
  const char *comma = memchr(s, ',', len);
  if (comma != NULL) {
    const char *rest = comma + 1;
    size_t rest_len = len - (size_t)(rest - s);
    /* IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT" */
    if (rest_len == 25 && rest[0] == ' ' && rest[3] == ' ' && rest[7] == ' ' &&
        rest[12] == ' ' && memcmp(rest + 21, " GMT", 4) == 0) {
      month = parse_month(rest + 4);
      return month && parse_digits(rest + 1, 2, &day) && parse_digits(rest + 8, 4, &year) &&
             parse_clock(rest + 13, 8, &h, &m, &sec) &&
             make_epoch(year, month, day, h, m, sec, epoch);
    }
    /* RFC 850: "Sunday, 06-Nov-94 08:49:37 GMT" */
    if (rest_len == 23 && rest[0] == ' ' && rest[3] == '-' && rest[7] == '-' &&
        rest[10] == ' ' && memcmp(rest + 19, " GMT", 4) == 0) {
      month = parse_month(rest + 4);
      if (!month || !parse_digits(rest + 1, 2, &day) || !parse_digits(rest + 8, 2, &year))
        return 0;
      year += year < 70 ? 2000 : 1900;
      return parse_clock(rest + 11, 8, &h, &m, &sec) &&
             make_epoch(year, month, day, h, m, sec, epoch);
    }
    return 0;
  }
  /* asctime: "Sun Nov  6 08:49:37 1994" */
  if (len == 24 && s[3] == ' ' && s[7] == ' ' && s[10] == ' ' && s[19] == ' ') {
    month = parse_month(s + 4);
    day = 0;
    if (!month) return 0;
    if (s[8] == ' ') {
      if (!parse_digits(s + 9, 1, &day)) return 0;
    } else if (!parse_digits(s + 8, 2, &day)) {
      return 0;
    }
    return parse_clock(s + 11, 8, &h, &m, &sec) && parse_digits(s + 20, 4, &year) &&
           make_epoch(year, month, day, h, m, sec, epoch);
  }
  return 0;
}

static void observe_count(sentry_rate_limit *rl, unsigned bit, double *field, const char *value,
                          size_t value_len) {
  if (sentry_parse_number(value, value_len, field)) {
    rl->present |= bit;
  } else {
    rl->present &= ~bit;
  }
}

/* The length first: most names are turned away without a comparison. */
#define NAME_IS(name, len, literal) ((len) == sizeof(literal) - 1 && sentry_header_name_is(name, len, literal))
#define RATE_LIMIT_PREFIX "x-sentry-rate-limit-"
#define RATE_LIMIT_PREFIX_LEN (sizeof(RATE_LIMIT_PREFIX) - 1)

void sentry_rate_limit_observe(sentry_rate_limit *rl, const char *name, size_t name_len,
                               const char *value, size_t value_len) {
  /* Every header of every response passes here: the length and first letter
   * turn away all but the ones read. */
  int first = name_len > 0 ? (name[0] | 0x20) : 0;
  if (first != 'x' && first != 'd' && first != 'r') return;
  if (first == 'x') {
    const char *field = name + RATE_LIMIT_PREFIX_LEN;
    size_t field_len = name_len - RATE_LIMIT_PREFIX_LEN;
    if (name_len <= RATE_LIMIT_PREFIX_LEN ||
        !sentry_header_name_is(name, RATE_LIMIT_PREFIX_LEN, RATE_LIMIT_PREFIX)) {
      return;
    }
    if (NAME_IS(field, field_len, "limit")) {
      observe_count(rl, SENTRY_RL_LIMIT, &rl->limit, value, value_len);
    } else if (NAME_IS(field, field_len, "remaining")) {
      observe_count(rl, SENTRY_RL_REMAINING, &rl->remaining, value, value_len);
    } else if (NAME_IS(field, field_len, "reset")) {
      observe_count(rl, SENTRY_RL_RESET, &rl->reset, value, value_len);
    } else if (NAME_IS(field, field_len, "concurrentlimit")) {
      observe_count(rl, SENTRY_RL_CONCURRENT_LIMIT, &rl->concurrent_limit, value, value_len);
    } else if (NAME_IS(field, field_len, "concurrentremaining")) {
      observe_count(rl, SENTRY_RL_CONCURRENT_REMAINING, &rl->concurrent_remaining, value,
                    value_len);
    }
  } else if (NAME_IS(name, name_len, "date")) {
    rl->has_date = sentry_parse_http_date(value, value_len, &rl->date);
  } else if (NAME_IS(name, name_len, "retry-after")) {
    double date;
    if (sentry_parse_number(value, value_len, &rl->retry_after)) {
      rl->has_retry_after = 1;
    } else if (sentry_parse_http_date(value, value_len, &date)) {
      /* Resolved against Date once all headers are in: sentry_rate_limit_finish. */
      rl->retry_after = date;
      rl->has_retry_after = 2;
    } else {
      rl->has_retry_after = 0;
    }
  }
}

double sentry_clock_skew(double date, double sent_at, double received_at) {
  /* The server wrote Date, a whole second, between the request's start and
   * its response's arrival: the skew lies in [date - received_at, date + 1 -
   * sent_at]. When 0 is in it the clocks agree as far as Date can tell (a body
   * that took seconds to arrive says nothing about the clocks), and the finer
   * local clock is the better guide. Outside it, shift by the lower bound of
   * the skew so a wait errs long, never early. */
  double lowest = date - received_at, highest = date + 1 - sent_at;
  return lowest <= 0 && highest >= 0 ? 0 : lowest;
}

double sentry_until_server_time(const sentry_rate_limit *rl, double server_time, double now) {
  return server_time - rl->clock_skew - now;
}

void sentry_rate_limit_finish(sentry_rate_limit *rl, double sent_at, double received_at) {
  rl->clock_skew = rl->has_date ? sentry_clock_skew(rl->date, sent_at, received_at) : 0;
  if (rl->has_retry_after == 2) {
    rl->retry_after = sentry_until_server_time(rl, rl->retry_after, received_at);
    rl->has_retry_after = 1;
  }
  /* Sentry's windows last seconds: a wait of more than SENTRY_MAX_HEADER_WAIT
   * is a broken or hostile header, and believing it would lock the endpoint
   * for as long. Such a value is dropped, as if the header were absent. */
  if (rl->has_retry_after && rl->retry_after > SENTRY_MAX_HEADER_WAIT) rl->has_retry_after = 0;
  if ((rl->present & SENTRY_RL_RESET) &&
      sentry_until_server_time(rl, rl->reset, received_at) > SENTRY_MAX_HEADER_WAIT) {
    rl->present &= ~(unsigned)SENTRY_RL_RESET;
  }
}

static double backoff(const sentry_retry_policy *policy, int attempts, double random01) {
  double ceiling = policy->backoff_base * pow(policy->backoff_factor, attempts - 1);
  if (ceiling > policy->backoff_cap) ceiling = policy->backoff_cap;
  return ceiling * random01; /* "full jitter" */
}

static int status_is_transient(int status) {
  return status == 502 || status == 503 || status == 504 || status == 507 || status == 524;
}

int sentry_status_is_final(int status) {
  return status != 429 && !status_is_transient(status);
}

sentry_retry_decision sentry_retry_decide(const sentry_retry_policy *policy, int attempts,
                                          int idempotent, int status,
                                          sentry_transport_outcome outcome,
                                          const sentry_rate_limit *rl, double received_at,
                                          double now, double random01) {
  sentry_retry_decision d = {SENTRY_DONE, 0, NULL};
  int may_have_acted = outcome != SENTRY_TRANSPORT_CONNECT;
  if (status == 429) {
    d.reason = "rate_limited"; /* a 429 was not processed: any method may retry */
    if (rl->has_retry_after) {
      d.wait = rl->retry_after - (now - received_at);
    } else if (rl->present & SENTRY_RL_RESET) {
      d.wait = sentry_until_server_time(rl, rl->reset, now) + policy->reset_margin;
    } else {
      d.wait = backoff(policy, attempts, random01);
    }
  } else if (status != 0) {
    if (sentry_status_is_final(status) || !(idempotent || policy->retry_unsafe)) return d;
    d.reason = "server_error";
    d.wait = backoff(policy, attempts, random01);
  } else {
    if (outcome == SENTRY_TRANSPORT_OK || outcome == SENTRY_TRANSPORT_FATAL) return d;
    if (may_have_acted && !(idempotent || policy->retry_unsafe)) return d;
    d.reason = outcome == SENTRY_TRANSPORT_TIMEOUT ? "timeout" : "network";
    d.wait = backoff(policy, attempts, random01);
  }
  /* NaN too: a backoff_base of 0 or infinity meets 0 * infinity after enough attempts */
  if (!(d.wait > 0)) d.wait = 0;
  if (attempts > policy->max_retries) {
    d.action = SENTRY_EXHAUSTED;
  } else if (d.wait > policy->max_retry_wait) {
    d.action = SENTRY_TOO_LONG;
  } else {
    d.action = SENTRY_RETRY;
  }
  return d;
}
