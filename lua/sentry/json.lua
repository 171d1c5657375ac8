--- Exact JSON. Decoding goes through lua-cjson (our own instance, so other
-- users of cjson cannot change its settings under us); encoding is our own,
-- because the lua-cjson that distributions ship writes at most 14 significant
-- digits (a 16-digit sentry.io id would be rounded) and cannot tell an empty
-- array from an empty object.
--
-- * Integers keep every digit up to 2^53 on every interpreter; other numbers
--   are written with the fewest digits that read back as the same number;
--   NaN and infinities are refused.
-- * `json.array(t)` marks a table as an array, so it goes out as `[]` when
--   empty; an unmarked empty table goes out as `{}`. Empty arrays in decoded
--   responses come back marked, so a body read with GET and sent back with
--   PUT keeps them.
-- @module sentry.json
local cjson = require("cjson.safe").new()

local json = {}

--- The value JSON `null` decodes to (also accepted when encoding).
json.null = cjson.null

--- The metatable of tables marked as arrays.
local ARRAY = { __name = "sentry.array" }
json.ARRAY = ARRAY

--- Marks a table (a new one when nil) as a JSON array.
-- @tparam[opt] table t
-- @treturn table t
function json.array(t)
  return setmetatable(t or {}, ARRAY)
end

--- Is this table marked as an array?
-- @param value
-- @treturn boolean
function json.is_array(value)
  return getmetatable(value) == ARRAY
end

local math_type = math.type or function() return nil end

--- The exact text of a number: every digit of an integer (of an integral
-- float too, up to 1e18), else the shortest form that reads back the same.
-- @tparam number x
-- @treturn ?string
-- @treturn ?string why there is none (NaN, infinities)
function json.number(x)
  if x ~= x or x == math.huge or x == -math.huge then
    return nil, "NaN and infinities have no JSON form"
  end
  if math_type(x) == "integer" then return string.format("%d", x) end
  if x == math.floor(x) and x > -1e18 and x < 1e18 then return string.format("%.0f", x) end
  for digits = 14, 17 do
    local text = string.format("%." .. digits .. "g", x)
    if tonumber(text) == x then return text end
  end
  return string.format("%.17g", x)
end

local ESCAPES = {
  ['"'] = '\\"', ["\\"] = "\\\\", ["\b"] = "\\b", ["\f"] = "\\f",
  ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t",
}

local function escape_char(c)
  return ESCAPES[c] or string.format("\\u%04x", c:byte())
end

local function quote(s)
  return '"' .. s:gsub('[%c"\\]', escape_char) .. '"'
end

local MAX_DEPTH = 100

local encode_value

-- An array when marked, or when the keys are exactly 1..n (n > 0).
local function as_array(t)
  if getmetatable(t) == ARRAY then return #t end
  local n = #t
  if n == 0 then return nil end
  local count = 0
  for _ in pairs(t) do count = count + 1 end
  if count == n then return n end
  return nil
end

--- How a table is sent: `"array"` when marked or when its keys are exactly
-- 1..n (n > 0), else `"object"` (so an empty unmarked table is an object).
-- @tparam table t
-- @treturn string
function json.table_kind(t)
  return as_array(t) and "array" or "object"
end

local function encode_table(t, out, path, depth)
  if depth > MAX_DEPTH then
    error(path .. ": nested more than " .. MAX_DEPTH .. " levels deep (a table that contains itself?)", 0)
  end
  local n = as_array(t)
  if n then
    out[#out + 1] = "["
    for i = 1, n do
      if i > 1 then out[#out + 1] = "," end
      encode_value(t[i], out, path .. "[" .. i .. "]", depth + 1)
    end
    out[#out + 1] = "]"
    return
  end
  local keys = {}
  for key in pairs(t) do
    local kind = type(key)
    if kind == "number" then
      local text, problem = json.number(key)
      if not text then error(path .. ": a key is " .. tostring(key) .. ": " .. problem, 0) end
      keys[#keys + 1] = { text, key }
    elseif kind == "string" then
      keys[#keys + 1] = { key, key }
    else
      error(path .. ": object keys must be strings, got a " .. kind, 0)
    end
  end
  -- sorted: the same table always gives the same text
  table.sort(keys, function(a, b) return a[1] < b[1] end)
  out[#out + 1] = "{"
  for i, entry in ipairs(keys) do
    if i > 1 then out[#out + 1] = "," end
    out[#out + 1] = quote(entry[1])
    out[#out + 1] = ":"
    encode_value(t[entry[2]], out, path .. "." .. entry[1], depth + 1)
  end
  out[#out + 1] = "}"
end

encode_value = function(value, out, path, depth)
  local kind = type(value)
  if kind == "string" then
    out[#out + 1] = quote(value)
  elseif kind == "number" then
    local text, problem = json.number(value)
    if not text then error(path .. " is " .. tostring(value) .. ": " .. problem, 0) end
    out[#out + 1] = text
  elseif kind == "boolean" then
    out[#out + 1] = value and "true" or "false"
  elseif value == nil or value == json.null then
    out[#out + 1] = "null"
  elseif kind == "table" then
    encode_table(value, out, path, depth)
  else
    error(path .. ": cannot encode a " .. kind .. " as JSON", 0)
  end
end

--- Encodes a value.
-- @param value
-- @tparam[opt="body"] string name what the value is, for messages
-- @treturn ?string
-- @treturn ?string what could not be encoded, naming where (`body.tags[2] is nan: ...`)
function json.encode(value, name)
  local out = {}
  local ok, problem = pcall(encode_value, value, out, name or "body", 1)
  if not ok then return nil, problem end
  return table.concat(out)
end

-- cjson decodes [] and {} alike. Before decoding, each empty array outside a
-- string becomes an object with this one key, which no JSON text can hold
-- (a raw control character); after decoding, such objects become marked arrays.
local EMPTY_ARRAY_KEY = "\1sentry.empty_array"
local EMPTY_ARRAY_TEXT = '{"\\u0001sentry.empty_array":0}'

-- Might the text hold an empty array? Plain searches for "[" (fast), then a
-- look past each one; a "[]" inside a string also says yes (the exact pass
-- below knows better).
local function may_hold_empty_array(text)
  local at = text:find("[", 1, true)
  while at do
    if text:find("^%s*%]", at + 1) then return true end
    at = text:find("[", at + 1, true)
  end
  return false
end

-- The text with its empty arrays replaced, or nil when it has none.
local function mark_empty_arrays(text)
  if not may_hold_empty_array(text) then return nil end
  local parts, from, pos = {}, 1, 1
  while true do
    local at = text:find('["%[]', pos)
    if not at then break end
    if text:byte(at) == 34 then -- a string: skip to its closing quote
      pos = at + 1
      while true do
        local stop = text:find('["\\]', pos)
        if not stop then return nil end -- unterminated: cjson reports it
        pos = stop + (text:byte(stop) == 92 and 2 or 1)
        if text:byte(stop) == 34 then break end
      end
    else
      local _, close = text:find("^%[%s*%]", at)
      if close then
        parts[#parts + 1] = text:sub(from, at - 1)
        parts[#parts + 1] = EMPTY_ARRAY_TEXT
        from = close + 1
        pos = close + 1
      else
        pos = at + 1
      end
    end
  end
  if #parts == 0 then return nil end
  parts[#parts + 1] = text:sub(from)
  return table.concat(parts)
end

local function restore_empty_arrays(value)
  if type(value) ~= "table" then return value end
  if value[EMPTY_ARRAY_KEY] ~= nil and next(value, next(value)) == nil then
    return json.array()
  end
  for key, item in pairs(value) do
    if type(item) == "table" then value[key] = restore_empty_arrays(item) end
  end
  return value
end

--- Decodes text, never raising; empty arrays come back marked (`json.array`).
-- @tparam string text
-- @return the value, or nil
-- @treturn ?string the problem
function json.decode(text)
  local marked = mark_empty_arrays(text)
  if not marked then return cjson.decode(text) end
  local value, problem = cjson.decode(marked)
  if problem then return cjson.decode(text) end -- report the problem in the caller's text
  return restore_empty_arrays(value)
end

local function is_json_type(content_type)
  local media = content_type and content_type:match("^%s*([^;%s]+)")
  if not media then return false end -- absent, empty or ";"
  media = media:lower()
  return media == "application/json" or media:match("^application/[%w.+-]+%+json$") ~= nil
end

--- Decodes a response body that says it is JSON.
-- @tparam ?string content_type the Content-Type header
-- @tparam string raw the body
-- @return the decoded value, or nil when the body is not JSON or empty
-- @treturn ?string why a body labelled JSON could not be decoded
function json.decode_response(content_type, raw)
  if raw == "" or not is_json_type(content_type) then return nil end
  local value, problem = json.decode(raw)
  if problem then return nil, problem end
  return value
end

--- Decodes a body that may be JSON whatever its label (Sentry sends some JSON
-- error bodies as text/html).
-- @tparam string raw
-- @return the decoded value, or nil
function json.decode_lenient(raw)
  if not raw:match("^%s*[%[{\"]") then return nil end
  return (json.decode(raw))
end

return json
