--- A reader for Java-style properties files, the format of the file that
-- `SENTRY_PROPERTIES` names (as sentry-cli reads it):
--
-- * `key=value`, `key: value` or `key value`; whitespace around the separator
--   is skipped; lines starting with `#` or `!` are comments;
-- * a line ending in an odd number of backslashes continues on the next
--   line (whose leading whitespace is skipped);
-- * escapes `\t`, `\n`, `\r`, `\f`, `\uXXXX` (written as UTF-8), and `\` before
--   any other character stands for that character;
-- * a key `section.name` is `name` in `[section]` (split at the last dot),
--   so `defaults.url` and `auth.token` mean what they mean in `.sentryclirc`.
--
-- The result has the shape of `sentry.ini.parse`'s. Messages never quote a
-- line: it may hold an auth token.
-- @module sentry.properties
local properties = {}

local SIMPLE_ESCAPES = { t = "\t", n = "\n", r = "\r", f = "\f" }

local function utf8_char(code)
  if code < 0x80 then return string.char(code) end
  if code < 0x800 then
    return string.char(0xC0 + math.floor(code / 64), 0x80 + code % 64)
  end
  return string.char(0xE0 + math.floor(code / 4096), 0x80 + math.floor(code / 64) % 64, 0x80 + code % 64)
end

-- Resolves escapes; nil when a \u escape is malformed.
local function unescape(text)
  local ok = true
  local out = text:gsub("\\(u?)(.?)(%x?%x?%x?)", function(u, first, rest)
    if u == "u" then
      local hex = first .. rest
      if not hex:match("^%x%x%x%x$") then ok = false return "" end
      return utf8_char(tonumber(hex, 16))
    end
    return (SIMPLE_ESCAPES[first] or first) .. rest
  end)
  if not ok then return nil end
  return out
end

-- Does the line end in an odd number of backslashes (a continuation)?
local function continues(line)
  local run = #line - #(line:gsub("\\+$", ""))
  return run % 2 == 1
end

-- Splits a logical line into raw key and raw value: the key ends at the
-- first unescaped "=", ":" or whitespace.
local function split(line)
  local i, n = 1, #line
  while i <= n do
    local c = line:sub(i, i)
    if c == "\\" then
      i = i + 2
    elseif c == "=" or c == ":" or c == " " or c == "\t" or c == "\f" then
      break
    else
      i = i + 1
    end
  end
  local key = line:sub(1, i - 1)
  local rest = line:sub(i)
  local value_start = rest:find("[^ \t\f]") or #rest + 1
  local separator = rest:sub(value_start, value_start)
  if separator == "=" or separator == ":" then
    rest = rest:sub(value_start + 1)
    value_start = rest:find("[^ \t\f]") or #rest + 1
  end
  return key, rest:sub(value_start)
end

--- Parses the text of a properties file.
-- @tparam string text
-- @tparam string label how to name the file in messages
-- @treturn[1] table `{ [section] = { [key] = { value = string, line = number } } }`
--   (keys without a dot are in section `""`)
-- @return[2] nil
-- @treturn[2] string what is wrong, naming the file and line
function properties.parse(text, label)
  local data = {}
  local logical, first_line = nil, nil
  local number = 0
  text = text:gsub("^\239\187\191", "") -- a UTF-8 byte order mark
  for raw in (text .. "\n"):gmatch("([^\n]*)\n") do
    number = number + 1
    local line = raw:gsub("\r$", "")
    local stripped = line:sub((line:find("[^ \t\f]") or #line + 1))
    if logical then
      logical = logical .. stripped
    elseif stripped ~= "" and not stripped:find("^[#!]") then
      logical, first_line = stripped, number
    end
    if logical and continues(logical) then
      logical = logical:sub(1, -2)
    elseif logical then
      local raw_key, raw_value = split(logical)
      local key, value = unescape(raw_key), unescape(raw_value)
      if not key or not value then
        return nil, string.format("%s:%d: malformed \\u escape (four hex digits expected)", label, first_line)
      end
      local section, name = key:match("^(.*)%.([^.]*)$")
      if not section then section, name = "", key end
      data[section] = data[section] or {}
      data[section][name] = { value = value, line = first_line }
      logical = nil
    end
  end
  return data
end

return properties
