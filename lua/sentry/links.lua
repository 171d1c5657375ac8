--- Parse HTTP `Link` headers (RFC 8288) as Sentry sends them for pagination.
--
-- Sentry's form:
--
--     <https://sentry.io/api/0/.../?&cursor=0:0:1>; rel="previous"; results="false"; cursor="0:0:1",
--     <https://sentry.io/api/0/.../?&cursor=0:100:0>; rel="next"; results="true"; cursor="0:100:0"
--
-- The parser accepts the general RFC 8288 syntax: relations and parameters
-- in any order, quoted or bare parameter values (quoted ones may hold commas,
-- semicolons and escaped quotes), extra whitespace, case-insensitive
-- parameter names and relation types, several relation types in one `rel`.
-- It never raises: input it cannot read gives nil and what is wrong.
-- @module sentry.links

local core = require "sentry.core_loader"
local text_helpers = require "sentry.text"
local urls = require "sentry.url"

local links = {}

-- Characters allowed in an RFC 7230 token (parameter names).
local TOKEN = "^[!#$%%&'*+%-.^_`|~%w]+"
local WHITESPACE = " \t\r\n"
local WHITESPACE_CLASS = "[" .. WHITESPACE .. "]"

local function skip_whitespace(text, position)
  while text:sub(position, position):find(WHITESPACE_CLASS) do
    position = position + 1
  end
  return position
end

-- Read a quoted string whose opening quote is at `position`; return its
-- unescaped value and the position after the closing quote, or nil when
-- the closing quote is missing.
local function read_quoted(text, position)
  local parts = {}
  local opening = position
  position = position + 1
  while position <= #text do
    local special = text:find('["\\]', position)
    if not special or special == #text and text:sub(special, special) == "\\" then
      break -- no closing quote, or a backslash with nothing left to escape
    end
    parts[#parts + 1] = text:sub(position, special - 1)
    if text:sub(special, special) == '"' then
      return table.concat(parts), special + 1
    end
    parts[#parts + 1] = text:sub(special + 1, special + 1)
    position = special + 2
  end
  return nil, "the quoted value at character " .. opening .. " has no closing quote"
end

-- Read one `name[=value]` parameter starting at `position` (just after the
-- ";" and any whitespace). Returns the lower-cased name, the value (""
-- when absent) and the next position; nil and why when it is malformed.
local function read_parameter(text, position)
  local name = text:match(TOKEN, position)
  if not name then
    return nil, "expected a parameter name at character " .. position
  end
  position = skip_whitespace(text, position + #name)
  if text:sub(position, position) ~= "=" then
    return name:lower(), "", position
  end
  position = skip_whitespace(text, position + 1)
  if text:sub(position, position) == '"' then
    local value, after = read_quoted(text, position)
    if not value then
      return nil, after
    end
    return name:lower(), value, after
  end
  -- A bare value runs to the next ";" or "," (RFC 8288, appendix B.3).
  local value_end = (text:find("[;,]", position) or #text + 1) - 1
  local value = text_helpers.trim(text:sub(position, value_end), WHITESPACE)
  if value:find('"', 1, true) then
    return nil, "the unquoted value at character " .. position .. " holds a quote"
  end
  return name:lower(), value, value_end + 1
end

-- Read one link-value starting at `position` ("<" expected). Returns the
-- target URL, its parameters (first occurrence of each name wins) and the
-- next position; nil and why when the link-value is malformed.
local function read_link(text, position)
  if text:sub(position, position) ~= "<" then
    return nil, "expected '<' at character " .. position
  end
  local closing = text:find(">", position + 1, true)
  if not closing then
    return nil, "the '<' at character " .. position .. " has no closing '>'"
  end
  local url = text:sub(position + 1, closing - 1)
  local params = {}
  position = skip_whitespace(text, closing + 1)
  while text:sub(position, position) == ";" do
    position = skip_whitespace(text, position + 1)
    local name, value, after = read_parameter(text, position)
    if not name then
      return nil, value
    end
    position = after
    if params[name] == nil then
      params[name] = value
    end
    position = skip_whitespace(text, position)
  end
  return url, params, position
end

-- The first value of query parameter `wanted` in `url`, decoded as a form
-- value (as Sentry's server reads it); nil when absent.
local function query_parameter(url, wanted)
  local _, parts = urls.query_parts(url)
  for _, part in ipairs(parts) do
    if part.key == wanted then
      return part.value
    end
  end
  return nil
end

local RESULTS = { ["true"] = true, ["false"] = false }

local function new_link(url, params)
  local cursor = params.cursor
  if cursor == nil then
    cursor = query_parameter(url, "cursor")
  end
  local copied_params = {}
  for name, value in pairs(params) do
    copied_params[name] = value
  end
  return {
    url = url,
    cursor = cursor,
    results = RESULTS[(params.results or ""):lower()],
    params = copied_params,
  }
end

--- Parse a `Link` header value.
-- @param header_value the header's value, e.g. `<https://...>; rel="next"; results="true"; cursor="0:100:0"`
-- @return a table keyed by lower-cased relation type (`next`, `previous`,
--   any other), each `{ url = string, cursor = string|nil, results =
--   true|false|nil, params = { lower-cased name = value } }`. `cursor` comes
--   from the `cursor` parameter, else from the URL's `cursor` query parameter
--   (percent-decoded); `results` is nil when absent or neither true nor false.
--   When a relation type appears twice the first link wins; links without
--   `rel` are left out; a `prev` link also serves as `previous` (its
--   registered synonym, which Sentry uses). A blank header gives an empty
--   table; malformed input or a non-string gives nil and what is wrong
--   (e.g. "expected ',' or ';' at character 26"). Never raises.
-- Sentry's own two-link form, read in one pass in C: pagination reads this on
-- every page, and the general parser below costs several times more.
local function sentry_form(text)
  local url1, rel1, results1, cursor1, url2, rel2, results2, cursor2 = core.sentry_links(text)
  if not url1 then return nil end
  local relation1, relation2 = rel1:lower(), rel2:lower()
  if relation1 == relation2 or relation1 == "prev" or relation2 == "prev" then return nil end
  return {
    [relation1] = { url = url1, cursor = cursor1, results = RESULTS[results1:lower()],
      params = { rel = rel1, results = results1, cursor = cursor1 } },
    [relation2] = { url = url2, cursor = cursor2, results = RESULTS[results2:lower()],
      params = { rel = rel2, results = results2, cursor = cursor2 } },
  }
end

function links.parse(header_value)
  if type(header_value) ~= "string" then
    return nil, "the header is not a string"
  end
  local fast = sentry_form(header_value)
  if fast then return fast end
  local text = header_value
  local result = {}
  local position = 1
  while true do
    -- Empty list elements (", ,") are allowed, as in every HTTP list.
    position = skip_whitespace(text, position)
    while text:sub(position, position) == "," do
      position = skip_whitespace(text, position + 1)
    end
    if position > #text then
      break
    end
    local url, params, after = read_link(text, position)
    if not url then
      return nil, params
    end
    position = after
    local next_char = text:sub(position, position)
    if next_char ~= "," and next_char ~= "" then
      return nil, "expected ',' or ';' at character " .. position
    end
    for relation in (params.rel or ""):gmatch("[^ \t\r\n]+") do
      relation = relation:lower()
      if result[relation] == nil then
        result[relation] = new_link(url, params)
      end
    end
  end
  -- "prev" is the registered synonym of Sentry's "previous".
  if result.previous == nil and result.prev ~= nil then
    result.previous = new_link(result.prev.url, result.prev.params)
  end
  return result
end

--- Tell whether there is a next page.
-- Sentry always sends a `next` link; only `results="true"` means it has items.
-- @param parsed the table `parse` returned (nil is accepted)
-- @return true only when the `next` link says `results="true"`
function links.has_next(parsed)
  return type(parsed) == "table" and type(parsed.next) == "table" and parsed.next.results == true
end

return links
