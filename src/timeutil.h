/* Clocks and sleeping. */
#ifndef SENTRY_TIMEUTIL_H
#define SENTRY_TIMEUTIL_H

/* Seconds since the epoch, sub-second precision. */
double sentry_wall_clock(void);

/* Seconds on a clock that never jumps. */
double sentry_monotonic_clock(void);

/* Blocks the thread (no busy wait) for the given seconds, resuming after signals. */
void sentry_sleep(double seconds);

#endif
