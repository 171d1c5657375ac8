--- JSON through lua-cjson, with our own instance so other users of cjson
-- cannot change its settings under us.
-- @module sentry.json
local cjson = require("cjson.safe").new()

local json = {}

--- The value JSON `null` decodes to (also accepted when encoding).
json.null = cjson.null

--- Encodes a value.
-- @param value
-- @treturn ?string
-- @treturn ?string what could not be encoded
function json.encode(value)
  return cjson.encode(value)
end

--- Decodes text, never raising.
-- @tparam string text
-- @return the value, or nil
-- @treturn ?string the problem
function json.decode(text)
  return cjson.decode(text)
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
  local value, problem = cjson.decode(raw)
  if problem then return nil, problem end
  return value
end

--- Decodes a body that may be JSON whatever its label (Sentry sends some JSON
-- error bodies as text/html).
-- @tparam string raw
-- @return the decoded value, or nil
function json.decode_lenient(raw)
  if not raw:match("^%s*[%[{\"]") then return nil end
  return (cjson.decode(raw))
end

return json
