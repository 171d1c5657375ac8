/* Sentry's rate-limit headers, Retry-After, and the retry/backoff policy.
 * Pure C, no Lua: the bindings live in core.c, the fuzzers call these directly. */
#ifndef SENTRY_RATELIMIT_H
#define SENTRY_RATELIMIT_H

#include <stddef.h>

enum {
  SENTRY_RL_LIMIT = 1,
  SENTRY_RL_REMAINING = 2,
  SENTRY_RL_RESET = 4,
  SENTRY_RL_CONCURRENT_LIMIT = 8,
  SENTRY_RL_CONCURRENT_REMAINING = 16
};

/* What one response said about rate limits and time. */
typedef struct {
  unsigned present;          /* SENTRY_RL_* bits of the fields below that were valid */
  double limit, remaining, reset, concurrent_limit, concurrent_remaining;
  int has_retry_after;
  double retry_after;        /* seconds after the response arrived */
  int has_date;
  double date;               /* the response's Date header, epoch seconds */
  double clock_skew;         /* from Date, set by sentry_rate_limit_finish: sentry_clock_skew */
} sentry_rate_limit;

/* A non-negative decimal number ("12", "1700000000", "1.5"); 0 on garbage. */
int sentry_parse_number(const char *s, size_t len, double *out);

/* An HTTP-date in any of RFC 9110's three forms, to epoch seconds; 0 on garbage. */
int sentry_parse_http_date(const char *s, size_t len, double *epoch);

/* Feeds one response header; ignores headers it does not know and bad values. */
void sentry_rate_limit_observe(sentry_rate_limit *rl, const char *name, size_t name_len,
                               const char *value, size_t value_len);

/* Longest wait believed from a Retry-After or Reset header, in seconds. */
#define SENTRY_MAX_HEADER_WAIT 3600.0

/* Works out the clock skew from Date, turns an HTTP-date Retry-After into
 * seconds after arrival, and drops a Retry-After or Reset further away than
 * SENTRY_MAX_HEADER_WAIT. sent_at and received_at: when the request started
 * and when its response was in (local clock). */
void sentry_rate_limit_finish(sentry_rate_limit *rl, double sent_at, double received_at);

/* How far the server's clock is ahead of ours, from a response's Date and the
 * local times the request started and its response was in: 0 while Date
 * cannot tell the clocks apart. */
double sentry_clock_skew(double date, double sent_at, double received_at);

/* Seconds from `now` (local clock) until the server-clock instant `server_time`. */
double sentry_until_server_time(const sentry_rate_limit *rl, double server_time, double now);

typedef struct {
  int max_retries;           /* retries after the first attempt */
  double max_retry_wait;     /* a longer wait is not slept: the call fails at once */
  double backoff_base, backoff_factor, backoff_cap;
  double reset_margin;       /* slack added after a Reset instant */
  int retry_unsafe;          /* also retry POST/PATCH after a possibly-processed failure */
} sentry_retry_policy;

typedef enum {
  SENTRY_TRANSPORT_OK = 0,
  SENTRY_TRANSPORT_CONNECT,  /* never reached the server: safe to retry any method */
  SENTRY_TRANSPORT_TIMEOUT,
  SENTRY_TRANSPORT_FAILED,   /* reset, truncated...: the server may have acted */
  SENTRY_TRANSPORT_FATAL     /* TLS trust, bad URL, too large: retrying cannot help */
} sentry_transport_outcome;

typedef enum {
  SENTRY_DONE,               /* nothing to retry */
  SENTRY_RETRY,              /* sleep `wait`, then try again */
  SENTRY_EXHAUSTED,          /* retryable, but max_retries is spent */
  SENTRY_TOO_LONG            /* retryable, but the wait exceeds max_retry_wait */
} sentry_retry_action;

typedef struct {
  sentry_retry_action action;
  double wait;
  const char *reason;        /* "rate_limited", "server_error", "timeout", "network" */
} sentry_retry_decision;

/* Is this HTTP status an answer no retry can change (anything but 429 and
 * the transient gateway statuses)? */
int sentry_status_is_final(int status);

/* The one place that decides whether and when to retry.
 * attempts: attempts made so far (>= 1); random01 in [0, 1) for the jitter. */
sentry_retry_decision sentry_retry_decide(const sentry_retry_policy *policy, int attempts,
                                          int idempotent, int status,
                                          sentry_transport_outcome outcome,
                                          const sentry_rate_limit *rl, double received_at,
                                          double now, double random01);

#endif
