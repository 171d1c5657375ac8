--- A small INI reader for `.sentryclirc` files.
--
-- Follows what sentry-cli (rust-ini) accepts:
--
-- * `[section]` headers; keys before the first header go to section `""`;
-- * `key = value` or `key: value` (the first `=` or `:` separates); key and
--   value are trimmed, and one pair of surrounding quotes is removed;
-- * whole-line comments starting with `;` or `#`; a `;` or `#` later in a
--   line is part of the value (there are no inline comments);
-- * a repeated key: the last one wins; section and key names are
--   case-sensitive;
-- * a UTF-8 byte order mark and CRLF line endings are tolerated.
--
-- Error messages name the file and the line but never quote the line: it
-- may hold an auth token.
-- @module sentry.ini

local text = require "sentry.text"

local ini = {}

local trim = text.trim

local function unquote(value)
  local first, last = value:sub(1, 1), value:sub(-1)
  if #value >= 2 and first == last and (first == '"' or first == "'") then
    return value:sub(2, -2)
  end
  return value
end

-- Reads one trimmed line: returns "skip", "section" + name, "pair" + key +
-- value, or nil + what is wrong.
local function read_line(line)
  local first = line:sub(1, 1)
  if line == "" or first == ";" or first == "#" then
    return "skip"
  end
  if first == "[" then
    local section = line:match("^%[(.*)%]$")
    if not section then
      return nil, "section header is missing its closing ']'"
    end
    section = trim(section)
    if section == "" then
      return nil, "section name is empty"
    end
    return "section", section
  end
  local key, value = line:match("^([^=:]*)[=:](.*)$")
  if not key then
    return nil, "expected 'key = value', a [section] header or a comment"
  end
  key = trim(key)
  if key == "" then
    return nil, "missing key before '='"
  end
  return "pair", key, unquote(trim(value))
end

--- Parses the text of an INI file.
-- @tparam string contents the file's contents
-- @tparam string name how to name the file in error messages
-- @treturn[1] table `{ [section] = { [key] = { value = string, line = number } } }`
-- @return[2] nil
-- @treturn[2] string `"<name>:<line>: <what is wrong>"`
function ini.parse(contents, name)
  local sections = { [""] = {} }
  local current = sections[""]
  contents = contents:gsub("^\239\187\191", "") -- a UTF-8 byte order mark
  local line_number = 0
  for line in (contents .. "\n"):gmatch("([^\n]*)\n") do
    line_number = line_number + 1
    local kind, a, b = read_line(trim((line:gsub("\r$", ""))))
    if not kind then
      return nil, name .. ":" .. line_number .. ": " .. a
    elseif kind == "section" then
      sections[a] = sections[a] or {}
      current = sections[a]
    elseif kind == "pair" then
      current[a] = { value = b, line = line_number }
    end
  end
  return sections
end

return ini
