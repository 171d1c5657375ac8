--- Sentry auth tokens: recognising, checking and hiding them.
--
-- Token shapes, as Sentry mints them:
--
-- * user auth token: `sntryu_` + 64 lowercase hex characters;
-- * organization auth token: `sntrys_` + base64(JSON payload, padded) + `_` +
--   43 base64 characters of secret; the payload names the org and the URL the
--   token belongs to;
-- * legacy / internal integration token: 64 lowercase hex characters;
-- * `sntrya_` (app) and `sntryi_` (integration): reserved prefixes.
--
-- Anything else is "unknown" and still usable: the server decides.
--
-- Nothing here returns or puts into a message the token itself, except
-- `redact`, which keeps its first 8 characters the way sentry-cli logs do.
-- @module sentry.token

local dsn = require "sentry.dsn"
local cjson = require "cjson.safe"

local token = {}

local PREFIX_TYPES = {
  sntryu_ = "user",
  sntrys_ = "org",
  sntrya_ = "app",
  sntryi_ = "integration",
}

local HEX64 = "^" .. string.rep("[0-9a-f]", 64) .. "$"
local ORG_SECRET = "^" .. string.rep("[A-Za-z0-9+/]", 43) .. "$"

-- Characters kept visible by `redact`; tokens shorter than SHOW_MIN are
-- masked entirely, since 8 characters would be most of them.
local SHOW = 8
local SHOW_MIN = 32
local MASK = "********"

local BASE64_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
local BASE64_VALUE = {}
for i = 1, #BASE64_ALPHABET do
  BASE64_VALUE[BASE64_ALPHABET:byte(i)] = i - 1
end

-- Decodes standard, padded base64 with arithmetic only (Lua 5.1 and LuaJIT
-- have no bitwise operators in common). Returns the bytes or nil.
local function base64_decode(text)
  if #text % 4 ~= 0 then
    return nil
  end
  local body = text:match("^([A-Za-z0-9+/]*)=?=?$")
  if not body then
    return nil
  end
  -- With the length a multiple of 4 and at most two "=", the last group
  -- has 2, 3 or 4 sextets: never the single sextet that cannot make a byte.
  local out = {}
  for i = 1, #body, 4 do
    local group = body:sub(i, i + 3)
    local n = 0
    for j = 1, 4 do
      local value = BASE64_VALUE[group:byte(j)] or 0 -- missing sextets are zero
      n = n * 64 + value
    end
    local b1 = math.floor(n / 65536)
    local b2 = math.floor(n / 256) % 256
    local b3 = n % 256
    if #group == 4 then
      out[#out + 1] = string.char(b1, b2, b3)
    elseif #group == 3 then
      out[#out + 1] = string.char(b1, b2)
    else
      out[#out + 1] = string.char(b1)
    end
  end
  return table.concat(out)
end

-- Encodes bytes as standard base64 without padding: only the characters that
-- depend on whole input groups, so the result is a substring of any base64
-- text whose input holds these bytes at a group boundary.
local function base64_whole_groups(bytes)
  local out = {}
  for i = 1, #bytes - 2, 3 do
    local a, b, c = bytes:byte(i, i + 2)
    local n = a * 65536 + b * 256 + c
    for shift = 18, 0, -6 do
      local value = math.floor(n / 2 ^ shift) % 64
      out[#out + 1] = BASE64_ALPHABET:sub(value + 1, value + 1)
    end
  end
  return table.concat(out)
end

-- Reads an org token's payload; returns the fields or nil + reason.
local function parse_org_token(s)
  local payload, secret, extra = s:match("^sntrys_([^_]*)_([^_]*)(.*)$")
  if not payload or extra ~= "" then
    return nil, "expected sntrys_<payload>_<secret> with exactly two underscores"
  end
  local json = base64_decode(payload)
  if not json then
    return nil, "payload is not valid base64"
  end
  local data = cjson.decode(json)
  if type(data) ~= "table" or data[1] ~= nil then
    return nil, "payload is not a JSON object"
  end
  if type(data.org) ~= "string" or data.org == "" then
    return nil, "payload names no organization"
  end
  if not secret:match(ORG_SECRET) then
    return nil, "secret is not 43 base64 characters"
  end
  local function text_or_nil(value)
    if type(value) == "string" and value ~= "" then
      return value
    end
    return nil -- absent, JSON null (self-hosted url) or empty
  end
  return {
    org = data.org,
    url = text_or_nil(data.url),
    region_url = text_or_nil(data.region_url),
    iat = type(data.iat) == "number" and data.iat or nil,
  }
end

--- Recognises a token's kind and reads an org token's payload.
--
-- The prefix decides the type. A token with a known prefix but the wrong
-- shape keeps its type and gets an `invalid` reason (sentry-cli would call it
-- unrecognised; the reason says more). An invalid org token has no `org`,
-- `url` or `region_url`: nothing in it can be trusted.
-- @tparam string s the token
-- @treturn table `{ type = "user"|"org"|"legacy"|"app"|"integration"|"unknown",
--   org, url, region_url, iat, invalid }`; `org`, `url` (nil when the payload
--   has null, as self-hosted tokens may), `region_url` and `iat` only for
--   valid org tokens; `invalid` is a reason string for malformed `sntryu_` and
--   `sntrys_` tokens. The token itself is never part of the result.
-- @raise when `s` is not a string
function token.parse(s)
  if type(s) ~= "string" then
    error("bad argument #1 to 'parse' (string expected, got " .. type(s) .. ")", 2)
  end
  local kind = PREFIX_TYPES[s:sub(1, 7)]
  if kind == "user" then
    if s:sub(8):match(HEX64) then
      return { type = "user" }
    end
    return { type = "user", invalid = "expected 64 lowercase hex characters after sntryu_" }
  elseif kind == "org" then
    local fields, reason = parse_org_token(s)
    if not fields then
      return { type = "org", invalid = reason }
    end
    fields.type = "org"
    return fields
  elseif kind then
    return { type = kind }
  elseif s:match(HEX64) then
    return { type = "legacy" }
  end
  return { type = "unknown" }
end

--- Checks that a value can be sent as a bearer token.
--
-- Catches the usual copy-and-paste mistakes. Unknown formats pass: only the
-- server knows what it accepts.
-- @param s the candidate token
-- @treturn[1] boolean true
-- @return[2] nil
-- @treturn[2] string what is wrong, never containing the token
function token.check(s)
  if type(s) ~= "string" then
    return nil, "auth token must be a string, got " .. type(s)
  end
  if s == "" then
    return nil, "auth token is empty"
  end
  if dsn.looks_like(s) then
    return nil, "this looks like a DSN, not an auth token: a DSN is for sending events "
      .. "(event ingestion), not for API calls; create an auth token at Settings > Auth Tokens"
  end
  if s:match("^%s*%a[%w+.%-]*://") then
    return nil, "auth token looks like a URL, not a token; "
      .. "create an auth token at Settings > Auth Tokens"
  end
  if s:match("^[Bb]earer%s") then
    return nil, "auth token starts with \"Bearer \"; give the token alone, "
      .. "the Authorization header is added for you"
  end
  local at = s:find("%s")
  if at then
    return nil, "auth token contains whitespace at position " .. at
      .. "; remove spaces/newlines copied with it"
  end
  at = s:find("%c")
  if at then
    return nil, "auth token contains a control character at position " .. at
      .. "; remove characters copied with it"
  end
  at = s:find("[\128-\255]")
  if at then
    return nil, "auth token contains a non-ASCII character at position " .. at
      .. " (often a typographic quote or an invisible character copied with it)"
  end
  return true
end

--- A display-safe form of a token.
--
-- Keeps the first 8 characters (enough to tell `sntryu_`/`sntrys_` tokens
-- and which of several tokens it is, as sentry-cli's logs do) and masks the
-- rest with a fixed-length mask, so the length does not show either. Values
-- shorter than 32 characters are masked entirely.
-- @param s a token, or nil
-- @treturn string e.g. `"sntryu_a********"`; `"(none)"` for nil or "",
--   `"(not a string)"` for other types
function token.redact(s)
  if s == nil or s == "" then
    return "(none)"
  end
  if type(s) ~= "string" then
    return "(not a string)"
  end
  if #s < SHOW_MIN then
    return MASK
  end
  return s:sub(1, SHOW) .. MASK
end

--- Masks everything that looks like a token inside a text.
--
-- For log lines, error bodies and messages that may quote a token: masks
-- `sntryu_`/`sntrys_`/`sntrya_`/`sntryi_` tokens, runs of 64 or more hex
-- characters (legacy tokens) and `Bearer` credentials, each with `redact`.
-- Idempotent: scrubbing a scrubbed text changes nothing.
-- @tparam string text
-- @treturn string the text with tokens masked
-- @raise when `text` is not a string or a number
function token.scrub(text)
  local kind = type(text)
  if kind == "number" then
    return tostring(text)
  elseif kind ~= "string" then
    error("bad argument #1 to 'scrub' (string expected, got " .. kind .. ")", 2)
  end
  -- Token alphabet plus "%" and "-" so percent-encoded and URL-safe copies go too.
  text = text:gsub("sntry[usai]_[%w+/=_%%%-]+", function(found)
    if #found >= 16 then
      return token.redact(found)
    end
  end)
  text = text:gsub("%x+", function(run)
    if #run >= 64 then
      return token.redact(run)
    end
  end)
  text = text:gsub("([Bb]earer%s+)([^%s\"',;]+)", function(scheme, credential)
    if #credential >= 16 and credential:sub(-#MASK) ~= MASK then
      return scheme .. token.redact(credential)
    end
  end)
  return text
end

-- Replaces every occurrence of `form` (plain text, no patterns) in `text`.
local function replace_plain(text, form, replacement)
  local start = text:find(form, 1, true)
  if not start then return text end
  local parts, from = {}, 1
  while start do
    parts[#parts + 1] = text:sub(from, start - 1)
    parts[#parts + 1] = replacement
    from = start + #form
    start = text:find(form, from, true)
  end
  parts[#parts + 1] = text:sub(from)
  return table.concat(parts)
end

-- Shorter copies could match ordinary text by chance.
local MIN_FORM = 12

--- A scrubber for one known secret: masks the secret itself wherever it
-- appears, in any format (a self-hosted or older token that `scrub` cannot
-- recognise by its shape too), percent-encoded (upper- or lower-case hex),
-- and base64-encoded at any offset (standard and URL-safe alphabets, as in a
-- Basic credential or a JWT a server echoes), then applies `scrub`.
-- @tparam ?string secret the token
-- @treturn function `scrub(text) -> text`, for strings (other values pass through)
function token.scrubber(secret)
  local forms = {}
  local function add(form)
    if #form >= MIN_FORM then
      forms[#forms + 1] = form
      local url_safe = form:gsub("[+/]", { ["+"] = "-", ["/"] = "_" })
      if url_safe ~= form then forms[#forms + 1] = url_safe end
    end
  end
  if type(secret) == "string" and #secret >= MIN_FORM then
    add(secret)
    add((secret:gsub("[^%w%-%._~]", function(c) return string.format("%%%02X", c:byte()) end)))
    add((secret:gsub("[^%w%-%._~]", function(c) return string.format("%%%02x", c:byte()) end)))
    -- After 0, 1 or 2 bytes of something else, the token's bytes start a
    -- base64 group at 0, 2 or 3 characters in (those characters mix in the
    -- bytes before it): skip them, and the last partial group.
    for offset, skip in pairs { [0] = 0, [1] = 2, [2] = 3 } do
      add(base64_whole_groups(string.rep("\0", offset) .. secret):sub(skip + 1))
    end
  end
  -- Longest first, so a form inside another is not masked half-way.
  table.sort(forms, function(a, b) return #a > #b end)
  local mask = token.redact(secret)
  return function(text)
    if type(text) ~= "string" then return text end
    for _, form in ipairs(forms) do text = replace_plain(text, form, mask) end
    return token.scrub(text)
  end
end

return token
