/* Reading typed values from a fuzzer's bytes (a small FuzzedDataProvider for C).
 * When the bytes run out, every read returns zero. */
#ifndef SENTRY_FUZZ_INPUT_H
#define SENTRY_FUZZ_INPUT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct {
  const uint8_t *data;
  size_t left;
} fuzz_input;

static inline uint64_t fuzz_u64(fuzz_input *in, size_t bytes) {
  uint64_t value = 0;
  size_t i;
  if (bytes > in->left) bytes = in->left;
  for (i = 0; i < bytes; i++) value = (value << 8) | in->data[i];
  in->data += bytes;
  in->left -= bytes;
  return value;
}

/* A whole number in [low, high]. */
static inline int64_t fuzz_range(fuzz_input *in, int64_t low, int64_t high) {
  uint64_t span = (uint64_t)(high - low);
  if (span == UINT64_MAX) return (int64_t)fuzz_u64(in, 8);
  return low + (int64_t)(fuzz_u64(in, 8) % (span + 1));
}

/* A number in [low, high] with a fractional part. */
static inline double fuzz_double(fuzz_input *in, double low, double high) {
  double unit = (double)fuzz_u64(in, 4) / 4294967295.0;
  return low + (high - low) * unit;
}

#endif
