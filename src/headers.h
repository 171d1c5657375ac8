/* Parsing of raw HTTP response header blocks. Pure C, no Lua: fuzzed directly. */
#ifndef SENTRY_HEADERS_H
#define SENTRY_HEADERS_H

#include <stddef.h>

/* Called once per "Name: value" line, name and value trimmed of blanks.
 * Return non-zero to stop the walk. */
typedef int (*sentry_header_fn)(void *userdata, const char *name, size_t name_len,
                                const char *value, size_t value_len);

/* Walks a header block ("HTTP/1.1 200 OK\r\nA: b\r\n..."). The status line,
 * blank lines and lines without a colon are skipped; obsolete folded
 * continuation lines are skipped too (RFC 9112 lets clients reject them). */
void sentry_headers_each(const char *block, size_t len, sentry_header_fn fn, void *userdata);

/* Case-insensitive comparison of a header name with a lower-case literal. */
int sentry_header_name_is(const char *name, size_t len, const char *lower);

/* Is c allowed in an HTTP token (method, header name)? RFC 9110 tchar. */
int sentry_is_tchar(int c);

#endif
