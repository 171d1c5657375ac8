#include "json.h"

#include <locale.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 1000
/* Items wait on the Lua stack until their container ends and its table is
 * made with the final size. The stack a C function may use is bounded (8000
 * slots on Lua 5.1), so once this many slots hold waiting items, every
 * container moves its items into its table before it takes another: then
 * the stack holds at most this plus a few slots per level. */
#define HELD_BUDGET 2048
/* The stack is asked for room once every ROOM_EVERY items, for this many
 * slots: each item takes at most 2 slots and each level opened meanwhile 3. */
#define ROOM_EVERY 16
#define ROOM_CHECKED (ROOM_EVERY * 5)
/* Object keys repeat, within a list and from one response to the next:
 * each short key read is remembered in one of KEY_SLOTS places (the Lua
 * string kept alive in a table, so its bytes stay where they are), and a key
 * found there is pushed without Lua hashing and interning it again. */
#define KEY_SLOTS 256 /* the slot is the top 8 bits of a 32-bit hash */
#define KEY_CACHED_MAX 40

typedef struct {
  const char *text[KEY_SLOTS]; /* the bytes of the string at the slot's index in the keeping table */
  size_t len[KEY_SLOTS];
} key_cache;

typedef struct {
  lua_State *L;
  const char *s;
  size_t len, pos;
  int null_index, array_index;
  int kept_keys;    /* index of the table that keeps the cached keys alive */
  key_cache *keys;
  int depth;
  int held;      /* stack slots holding items that wait for their table */
  int unchecked; /* items pushed since the stack last had room for ROOM_CHECKED more */
  const char *error; /* what is wrong, NULL while all is well */
  size_t error_at;   /* 1-based */
} decoder;

static int fail(decoder *d, const char *what) {
  if (d->error == NULL) {
    d->error = what;
    d->error_at = d->pos + 1;
  }
  return 0;
}

static inline void skip_blanks(decoder *d) {
  while (d->pos < d->len) {
    char c = d->s[d->pos];
    if (c != ' ' && c != '\n' && c != '\r' && c != '\t') return;
    d->pos++;
  }
}

static int decode_value(decoder *d);

static int hex4(const char *s, unsigned *out) {
  unsigned value = 0;
  int i;
  for (i = 0; i < 4; i++) {
    char c = s[i];
    value <<= 4;
    if (c >= '0' && c <= '9') value |= (unsigned)(c - '0');
    else if (c >= 'a' && c <= 'f') value |= (unsigned)(c - 'a' + 10);
    else if (c >= 'A' && c <= 'F') value |= (unsigned)(c - 'A' + 10);
    else return 0;
  }
  *out = value;
  return 1;
}

static void add_utf8(luaL_Buffer *b, unsigned code) {
  char out[4];
  size_t n;
  if (code < 0x80) {
    out[0] = (char)code;
    n = 1;
  } else if (code < 0x800) {
    out[0] = (char)(0xC0 | (code >> 6));
    out[1] = (char)(0x80 | (code & 0x3F));
    n = 2;
  } else if (code < 0x10000) {
    out[0] = (char)(0xE0 | (code >> 12));
    out[1] = (char)(0x80 | ((code >> 6) & 0x3F));
    out[2] = (char)(0x80 | (code & 0x3F));
    n = 3;
  } else {
    out[0] = (char)(0xF0 | (code >> 18));
    out[1] = (char)(0x80 | ((code >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((code >> 6) & 0x3F));
    out[3] = (char)(0x80 | (code & 0x3F));
    n = 4;
  }
  luaL_addlstring(b, out, n);
}

/* The escape at d->pos (just past the backslash), added to b. */
static int add_escape(decoder *d, luaL_Buffer *b) {
  unsigned code, low;
  char c;
  if (d->pos >= d->len) return fail(d, "a string is not terminated");
  c = d->s[d->pos];
  switch (c) {
    case '"': case '\\': case '/': luaL_addchar(b, c); d->pos++; return 1;
    case 'b': luaL_addchar(b, '\b'); d->pos++; return 1;
    case 'f': luaL_addchar(b, '\f'); d->pos++; return 1;
    case 'n': luaL_addchar(b, '\n'); d->pos++; return 1;
    case 'r': luaL_addchar(b, '\r'); d->pos++; return 1;
    case 't': luaL_addchar(b, '\t'); d->pos++; return 1;
    case 'u': break;
    default: return fail(d, "invalid escape in a string");
  }
  if (d->len - d->pos < 5 || !hex4(d->s + d->pos + 1, &code)) return fail(d, "invalid \\u escape");
  d->pos += 5;
  if (code >= 0xDC00 && code <= 0xDFFF) return fail(d, "a \\u escape holds a lone low surrogate");
  if (code >= 0xD800 && code <= 0xDBFF) {
    if (d->len - d->pos < 6 || d->s[d->pos] != '\\' || d->s[d->pos + 1] != 'u' ||
        !hex4(d->s + d->pos + 2, &low) || low < 0xDC00 || low > 0xDFFF) {
      return fail(d, "a \\u escape holds a high surrogate without its low surrogate");
    }
    d->pos += 6;
    code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00);
  }
  add_utf8(b, code);
  return 1;
}

/* The string whose opening quote is at d->pos. */
static int decode_string(decoder *d) {
  const char *s = d->s;
  size_t start = d->pos + 1, p;
  const char *quote = memchr(s + start, '"', d->len - start);
  luaL_Buffer b;
  if (quote != NULL && memchr(s + start, '\\', (size_t)(quote - s) - start) == NULL) {
    /* no escapes: the common case, found by two memchr scans */
    lua_pushlstring(d->L, s + start, (size_t)(quote - s) - start);
    d->pos = (size_t)(quote - s) + 1;
    return 1;
  }
  p = start;
  while (p < d->len && s[p] != '"' && s[p] != '\\') p++;
  luaL_buffinit(d->L, &b);
  for (;;) {
    luaL_addlstring(&b, s + start, p - start);
    d->pos = p;
    if (p >= d->len) return fail(d, "a string is not terminated");
    if (s[p] == '"') break;
    d->pos = p + 1; /* past the backslash */
    if (!add_escape(d, &b)) return 0;
    start = p = d->pos;
    while (p < d->len && s[p] != '"' && s[p] != '\\') p++;
  }
  luaL_pushresult(&b);
  d->pos++;
  return 1;
}

static const double POWERS_OF_TEN[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                       1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                       1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* strtod for the rare number the exact fast path cannot take, with the
 * C locale's '.' whatever the process's locale says. */
static int slow_number(decoder *d, size_t start, size_t len, double *out) {
  char small[320];
  char *text = small, *dot;
  if (len >= sizeof small) { /* valid JSON has no length limit: 1000 zeros and a 1 */
    text = malloc(len + 1);
    if (text == NULL) return fail(d, "out of memory reading a long number");
  }
  memcpy(text, d->s + start, len);
  text[len] = '\0';
  dot = strchr(text, '.');
  if (dot != NULL) *dot = localeconv()->decimal_point[0];
  *out = strtod(text, NULL);
  if (text != small) free(text);
  return 1;
}

/* A number per JSON's grammar. Up to 15 significant digits and a power of
 * ten within 10^22 the result is exact and correctly rounded (one IEEE
 * operation on exact operands); longer ones go through strtod. */
static int decode_number(decoder *d) {
  const char *s = d->s;
  size_t start = d->pos, p = d->pos;
  int negative = 0, digits = 0, exponent = 0, exp_value = 0, exp_negative = 0;
  double mantissa = 0, value;
  if (s[p] == '-') { negative = 1; p++; }
  if (p < d->len && s[p] == '0') {
    p++;
    digits = 0; /* a leading zero adds no significant digit */
  } else if (p < d->len && s[p] >= '1' && s[p] <= '9') {
    while (p < d->len && s[p] >= '0' && s[p] <= '9') {
      if (digits < 16) mantissa = mantissa * 10 + (s[p] - '0');
      else exponent++;
      digits++;
      p++;
    }
  } else {
    d->pos = p;
    return fail(d, "invalid number");
  }
  if (p < d->len && s[p] == '.') {
    p++;
    if (p >= d->len || s[p] < '0' || s[p] > '9') { d->pos = p; return fail(d, "invalid number"); }
    while (p < d->len && s[p] >= '0' && s[p] <= '9') {
      if (digits > 0 || s[p] != '0') {
        if (digits < 16) { mantissa = mantissa * 10 + (s[p] - '0'); exponent--; }
        digits++;
      } else {
        exponent--;
      }
      p++;
    }
  }
  if (p < d->len && (s[p] == 'e' || s[p] == 'E')) {
    p++;
    if (p < d->len && (s[p] == '+' || s[p] == '-')) { exp_negative = s[p] == '-'; p++; }
    if (p >= d->len || s[p] < '0' || s[p] > '9') { d->pos = p; return fail(d, "invalid number"); }
    while (p < d->len && s[p] >= '0' && s[p] <= '9') {
      if (exp_value < 100000) exp_value = exp_value * 10 + (s[p] - '0');
      p++;
    }
  }
  exponent += exp_negative ? -exp_value : exp_value;
  if (digits <= 15 && exponent >= -22 && exponent <= 22) {
    value = exponent >= 0 ? mantissa * POWERS_OF_TEN[exponent] : mantissa / POWERS_OF_TEN[-exponent];
    if (negative) value = -value;
  } else if (!slow_number(d, start, p - start, &value)) {
    return 0;
  }
  d->pos = p;
  lua_pushnumber(d->L, value);
  return 1;
}

static int literal(decoder *d, const char *word, size_t n) {
  if (d->len - d->pos < n || memcmp(d->s + d->pos, word, n) != 0) return fail(d, "expected a value");
  d->pos += n;
  return 1;
}

typedef void (*flusher)(decoder *, int, int *, int *);

/* Room on the stack for one more item (see HELD_BUDGET). */
static int make_room(decoder *d, flusher flush, int base, int *table, int *done) {
  if (d->held >= HELD_BUDGET) flush(d, base, table, done);
  if (d->unchecked++ < ROOM_EVERY) return 1;
  d->unchecked = 0;
  if (lua_checkstack(d->L, ROOM_CHECKED)) return 1;
  return fail(d, "the JSON text is nested too deeply to decode here");
}

/* Moves the items above the table (or above base, when there is no table
 * yet: then the table is made, sized for them) into it. */
static void flush_array(decoder *d, int base, int *table, int *done) {
  lua_State *L = d->L;
  int pending = lua_gettop(L) - (*table ? *table : base), i;
  if (!*table) {
    lua_createtable(L, pending, 0);
    lua_insert(L, base + 1);
    *table = base + 1;
  }
  for (i = pending; i >= 1; i--) lua_rawseti(L, *table, *done + i); /* pops the top item */
  *done += pending;
  d->held -= pending;
}

static void flush_object(decoder *d, int base, int *table, int *done) {
  lua_State *L = d->L;
  int first, pending = (lua_gettop(L) - (*table ? *table : base)) / 2, i;
  if (!*table) {
    lua_createtable(L, 0, pending);
    lua_insert(L, base + 1);
    *table = base + 1;
  }
  first = *table + 1;
  for (i = 0; i < pending; i++) { /* in order: of a repeated key, the last value wins */
    lua_pushvalue(L, first + 2 * i);
    lua_pushvalue(L, first + 2 * i + 1);
    lua_rawset(L, *table);
  }
  lua_settop(L, *table);
  *done += pending;
  d->held -= 2 * pending;
}

static int enter(decoder *d) {
  if (++d->depth > MAX_DEPTH) return fail(d, "nested more than 1000 levels deep");
  d->pos++; /* past the opening bracket */
  skip_blanks(d);
  return 1;
}

/* After an item: 1 when a ',' says another follows, 0 when `close` ends the
 * container (then it is left), -1 when neither comes. */
static int after_item(decoder *d, char close, const char *problem) {
  skip_blanks(d);
  if (d->pos < d->len && d->s[d->pos] == ',') {
    d->pos++;
    return 1;
  }
  if (d->pos < d->len && d->s[d->pos] == close) {
    d->pos++;
    d->depth--;
    return 0;
  }
  fail(d, problem);
  return -1;
}

/* Leaves an empty container whose `close` follows its opening at once. */
static int ends_empty(decoder *d, char close) {
  if (d->pos >= d->len || d->s[d->pos] != close) return 0;
  d->pos++;
  d->depth--;
  return 1;
}

/* The items of a container up to `close`, each read by `read` and holding
 * `slots` stack slots until `flush` puts them into the table; leaves the table. */
static int decode_items(decoder *d, int base, int (*read)(decoder *), int slots, flusher flush, char close,
                        const char *problem) {
  int table = 0, done = 0, more;
  do {
    if (!make_room(d, flush, base, &table, &done) || !read(d)) return 0;
    d->held += slots;
    more = after_item(d, close, problem);
    if (more < 0) return 0;
  } while (more);
  flush(d, base, &table, &done);
  return 1;
}

static int decode_array(decoder *d) {
  int base = lua_gettop(d->L);
  if (!enter(d)) return 0;
  if (ends_empty(d, ']')) {
    lua_createtable(d->L, 0, 0);
    lua_pushvalue(d->L, d->array_index); /* empty: marked, so it goes back out as [] */
    lua_setmetatable(d->L, -2);
    return 1;
  }
  return decode_items(d, base, decode_value, 1, flush_array, ']', "expected ',' or ']' after an array item");
}

/* The key whose opening quote is at d->pos: from the cache when it is there. */
static int decode_key(decoder *d) {
  const char *text = d->s + d->pos + 1;
  const char *quote = memchr(text, '"', d->len - d->pos - 1);
  size_t n;
  unsigned slot;
  key_cache *keys = d->keys;
  if (quote == NULL) return decode_string(d);
  n = (size_t)(quote - text);
  if (n == 0 || n > KEY_CACHED_MAX || memchr(text, '\\', n) != NULL) return decode_string(d);
  slot = ((unsigned)n << 24 | (unsigned)(unsigned char)text[0] << 16 |
          (unsigned)(unsigned char)text[n >> 1] << 8 | (unsigned char)text[n - 1]) * 0x9E3779B1u >> 24;
  d->pos += n + 2;
  if (keys->len[slot] == n && memcmp(keys->text[slot], text, n) == 0) {
    lua_rawgeti(d->L, d->kept_keys, (int)slot + 1);
    return 1;
  }
  lua_pushlstring(d->L, text, n);
  lua_pushvalue(d->L, -1);
  lua_rawseti(d->L, d->kept_keys, (int)slot + 1);
  keys->text[slot] = lua_tostring(d->L, -1);
  keys->len[slot] = n;
  return 1;
}

/* "key": value, both pushed. */
static int decode_member(decoder *d) {
  skip_blanks(d);
  if (d->pos >= d->len || d->s[d->pos] != '"') return fail(d, "expected a string as an object key");
  if (!decode_key(d)) return 0;
  skip_blanks(d);
  if (d->pos >= d->len || d->s[d->pos] != ':') return fail(d, "expected ':' after an object key");
  d->pos++;
  return decode_value(d);
}

static int decode_object(decoder *d) {
  int base = lua_gettop(d->L);
  if (!enter(d)) return 0;
  if (ends_empty(d, '}')) {
    lua_createtable(d->L, 0, 0);
    return 1;
  }
  return decode_items(d, base, decode_member, 2, flush_object, '}', "expected ',' or '}' after an object member");
}

static int decode_value(decoder *d) {
  skip_blanks(d);
  if (d->pos >= d->len) return fail(d, "expected a value, found the end of the text");
  switch (d->s[d->pos]) {
    case '{': return decode_object(d);
    case '[': return decode_array(d);
    case '"': return decode_string(d);
    case 't':
      if (!literal(d, "true", 4)) return 0;
      lua_pushboolean(d->L, 1);
      return 1;
    case 'f':
      if (!literal(d, "false", 5)) return 0;
      lua_pushboolean(d->L, 0);
      return 1;
    case 'n':
      if (!literal(d, "null", 4)) return 0;
      lua_pushvalue(d->L, d->null_index);
      return 1;
    default:
      if (d->s[d->pos] == '-' || (d->s[d->pos] >= '0' && d->s[d->pos] <= '9')) return decode_number(d);
      return fail(d, "expected a value");
  }
}

static int decode_json(lua_State *L) {
  decoder d;
  d.L = L;
  d.s = luaL_checklstring(L, 1, &d.len);
  luaL_checkany(L, 2);
  luaL_checktype(L, 3, LUA_TTABLE);
  lua_settop(L, 3);
  d.null_index = 2;
  d.array_index = 3;
  d.kept_keys = lua_upvalueindex(1);
  d.keys = lua_touserdata(L, lua_upvalueindex(2));
  d.pos = 0;
  d.depth = 0;
  d.held = 0;
  d.unchecked = ROOM_EVERY; /* the first item asks */
  d.error = NULL;
  d.error_at = 0;
  if (decode_value(&d)) {
    skip_blanks(&d);
    if (d.pos == d.len) return 1;
    fail(&d, "unexpected text after the JSON value");
  }
  lua_settop(L, 3);
  lua_pushnil(L);
  lua_pushfstring(L, "%s at character %d", d.error, (int)d.error_at);
  return 2;
}

void sentry_json_open(lua_State *L) {
  key_cache *keys;
  lua_createtable(L, KEY_SLOTS, 0);
  keys = lua_newuserdata(L, sizeof *keys);
  memset(keys, 0, sizeof *keys); /* no slot holds a key: len 0 never matches */
  lua_pushcclosure(L, decode_json, 2);
}
