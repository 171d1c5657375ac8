#define _POSIX_C_SOURCE 200809L
#include "timeutil.h"

#include <errno.h>
#include <time.h>

static double to_seconds(const struct timespec *ts) { return ts->tv_sec + ts->tv_nsec / 1e9; }

double sentry_wall_clock(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return to_seconds(&ts);
}

double sentry_monotonic_clock(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return to_seconds(&ts);
}

void sentry_sleep(double seconds) {
  struct timespec left;
  if (!(seconds > 0)) return;
  if (seconds > 1e9) seconds = 1e9; /* about 31 years; (time_t) of infinity is undefined */
  left.tv_sec = (time_t)seconds;
  left.tv_nsec = (long)((seconds - (double)left.tv_sec) * 1e9);
  while (nanosleep(&left, &left) != 0 && errno == EINTR) {
  }
}
