#include "headers.h"

#include <string.h>

static int is_blank(char c) { return c == ' ' || c == '\t'; }

static int to_lower(int c) { return (c >= 'A' && c <= 'Z') ? c + ('a' - 'A') : c; }

/* RFC 9110 tchar, one flag per byte: names are checked a byte at a time on
 * every response. */
static const unsigned char TCHAR[256] = {
    ['!'] = 1, ['#'] = 1, ['$'] = 1, ['%'] = 1, ['&'] = 1, ['\''] = 1, ['*'] = 1, ['+'] = 1,
    ['-'] = 1, ['.'] = 1, ['^'] = 1, ['_'] = 1, ['`'] = 1, ['|'] = 1, ['~'] = 1,
    ['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1, ['6'] = 1, ['7'] = 1, ['8'] = 1,
    ['9'] = 1, ['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1, ['F'] = 1, ['G'] = 1, ['H'] = 1,
    ['I'] = 1, ['J'] = 1, ['K'] = 1, ['L'] = 1, ['M'] = 1, ['N'] = 1, ['O'] = 1, ['P'] = 1, ['Q'] = 1,
    ['R'] = 1, ['S'] = 1, ['T'] = 1, ['U'] = 1, ['V'] = 1, ['W'] = 1, ['X'] = 1, ['Y'] = 1, ['Z'] = 1,
    ['a'] = 1, ['b'] = 1, ['c'] = 1, ['d'] = 1, ['e'] = 1, ['f'] = 1, ['g'] = 1, ['h'] = 1, ['i'] = 1,
    ['j'] = 1, ['k'] = 1, ['l'] = 1, ['m'] = 1, ['n'] = 1, ['o'] = 1, ['p'] = 1, ['q'] = 1, ['r'] = 1,
    ['s'] = 1, ['t'] = 1, ['u'] = 1, ['v'] = 1, ['w'] = 1, ['x'] = 1, ['y'] = 1, ['z'] = 1,
};

int sentry_is_tchar(int c) { return c >= 0 && c < 256 && TCHAR[c]; }

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
