#include "headers.h"

#include <string.h>

static int is_blank(char c) { return c == ' ' || c == '\t'; }

static int to_lower(int c) { return (c >= 'A' && c <= 'Z') ? c + ('a' - 'A') : c; }

int sentry_is_tchar(int c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return 1;
  return c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

int sentry_header_name_is(const char *name, size_t len, const char *lower) {
  size_t i;
  for (i = 0; i < len; i++) {
    if (lower[i] == '\0' || to_lower((unsigned char)name[i]) != lower[i]) return 0;
  }
  return lower[len] == '\0';
}

static int parse_line(const char *line, size_t len, sentry_header_fn fn, void *userdata) {
  const char *colon = memchr(line, ':', len);
  const char *value;
  size_t name_len, value_len, i;
  if (colon == NULL || colon == line || is_blank(line[0])) return 0;
  name_len = (size_t)(colon - line);
  for (i = 0; i < name_len; i++) {
    if (!sentry_is_tchar((unsigned char)line[i])) return 0;
  }
  value = colon + 1;
  value_len = len - name_len - 1;
  while (value_len > 0 && is_blank(*value)) { value++; value_len--; }
  while (value_len > 0 && is_blank(value[value_len - 1])) value_len--;
  return fn(userdata, line, name_len, value, value_len);
}

void sentry_headers_each(const char *block, size_t len, sentry_header_fn fn, void *userdata) {
  size_t pos = 0;
  while (pos < len) {
    const char *line = block + pos;
    const char *newline = memchr(line, '\n', len - pos);
    size_t line_len = newline ? (size_t)(newline - line) : len - pos;
    pos += line_len + (newline ? 1 : 0);
    if (line_len > 0 && line[line_len - 1] == '\r') line_len--;
    if (line_len >= 5 && memcmp(line, "HTTP/", 5) == 0) continue;
    if (line_len > 0 && parse_line(line, line_len, fn, userdata)) return;
  }
}
