-- JSON for the fake server.
--
-- cjson cannot tell an empty array from an empty object and escapes "/", so
-- responses are encoded here: lists are marked with json.array(), object keys
-- come out sorted (stable bodies are easier to assert on), and cjson is used only
-- for strings, non-integer numbers and decoding.

local cjson = require "cjson"

local json = {}

json.null = cjson.null

local ARRAY = {}

-- Marks t as a JSON array, so that it stays "[]" when empty.
function json.array(t)
  return setmetatable(t or {}, ARRAY)
end

local function is_array(t)
  if getmetatable(t) == ARRAY then return true end
  local n = #t
  if n == 0 then return false end
  local count = 0
  for _ in pairs(t) do count = count + 1 end
  return count == n
end

local encode_value

local function encode_string(s)
  return (cjson.encode(s):gsub("\\/", "/"))
end

local function encode_number(n)
  if n == math.floor(n) and n > -2^53 and n < 2^53 then
    return string.format("%d", n)
  end
  return cjson.encode(n)
end

local function encode_table(t, out)
  if is_array(t) then
    out[#out + 1] = "["
    for i = 1, #t do
      if i > 1 then out[#out + 1] = "," end
      encode_value(t[i], out)
    end
    out[#out + 1] = "]"
    return
  end
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  out[#out + 1] = "{"
  for i, k in ipairs(keys) do
    if i > 1 then out[#out + 1] = "," end
    out[#out + 1] = encode_string(tostring(k))
    out[#out + 1] = ":"
    encode_value(t[k], out)
  end
  out[#out + 1] = "}"
end

function encode_value(v, out)
  local kind = type(v)
  if kind == "string" then
    out[#out + 1] = encode_string(v)
  elseif kind == "number" then
    out[#out + 1] = encode_number(v)
  elseif kind == "boolean" then
    out[#out + 1] = tostring(v)
  elseif kind == "table" then
    encode_table(v, out)
  elseif v == nil or v == cjson.null then
    out[#out + 1] = "null"
  else
    error("cannot encode a " .. kind .. " as JSON")
  end
end

function json.encode(value)
  local out = {}
  encode_value(value, out)
  return table.concat(out)
end

-- Returns the decoded value, or nil and cjson's message.
function json.decode(text)
  local ok, value = pcall(cjson.decode, text)
  if not ok then return nil, value end
  return value
end

return json
