#include "links.h"

#include <string.h>

typedef struct {
  const char *s;
  size_t len, pos;
} cursor_t;

static int literal(cursor_t *c, const char *text) {
  size_t n = strlen(text);
  if (c->len - c->pos < n || memcmp(c->s + c->pos, text, n) != 0) return 0;
  c->pos += n;
  return 1;
}

static int is_letter(char ch) { return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z'); }

/* One or more ASCII letters, then a closing quote. */
static int letters(cursor_t *c, size_t *start, size_t *n) {
  *start = c->pos;
  while (c->pos < c->len && is_letter(c->s[c->pos])) c->pos++;
  *n = c->pos - *start;
  return *n > 0 && literal(c, "\"");
}

/* <url>; rel="..."; results="..."; cursor="...": four spans (start, length). */
static int link_value(cursor_t *c, size_t spans[8]) {
  const char *close;
  if (!literal(c, "<")) return 0;
  close = memchr(c->s + c->pos, '>', c->len - c->pos);
  if (close == NULL) return 0;
  spans[0] = c->pos;
  spans[1] = (size_t)(close - c->s) - c->pos;
  c->pos += spans[1] + 1;
  if (!literal(c, "; rel=\"") || !letters(c, &spans[2], &spans[3])) return 0;
  if (!literal(c, "; results=\"") || !letters(c, &spans[4], &spans[5])) return 0;
  if (!literal(c, "; cursor=\"")) return 0;
  spans[6] = c->pos;
  while (c->pos < c->len && c->s[c->pos] != '"' && c->s[c->pos] != '\\') c->pos++;
  spans[7] = c->pos - spans[6];
  return literal(c, "\"");
}

int sentry_lua_sentry_links(lua_State *L) {
  size_t spans[16], i;
  cursor_t c;
  c.s = luaL_checklstring(L, 1, &c.len);
  c.pos = 0;
  if (!link_value(&c, spans) || !literal(&c, ", ") || !link_value(&c, spans + 8) || c.pos != c.len) {
    return 0;
  }
  for (i = 0; i < 16; i += 2) lua_pushlstring(L, c.s + spans[i], spans[i + 1]);
  return 8;
}
