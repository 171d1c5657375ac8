-- The request as handlers see it.
-- luacheck: globals ngx

local json = require "fake_sentry.json"
local respond = require "fake_sentry.respond"

local request = {}
request.__index = request

function request.current()
  local self = setmetatable({}, request)
  self.method = ngx.req.get_method()
  self.path = ngx.var.uri
  -- Links are absolute and built from what the client asked for, so they point
  -- at the HTTP or the TLS listener, whichever was used.
  local host = ngx.var.http_host or (ngx.var.server_addr .. ":" .. ngx.var.server_port)
  self.origin = ngx.var.scheme .. "://" .. host
  self.args = ngx.req.get_uri_args(0)
  return self
end

-- Django's QueryDict.get(): the last value of a repeated key.
function request:arg(name)
  local value = self.args[name]
  if type(value) == "table" then value = value[#value] end
  if value == true then value = "" end
  return value
end

function request:number_arg(name, default)
  return tonumber(self:arg(name)) or default
end

-- The raw body, or nil when there is none (large bodies are buffered to a file).
function request:body()
  if self.raw_body == nil then
    ngx.req.read_body()
    local data = ngx.req.get_body_data()
    local path = not data and ngx.req.get_body_file()
    if path then
      local file = assert(io.open(path, "rb"))
      data = file:read("*a")
      file:close()
    end
    self.raw_body = data or false
  end
  return self.raw_body or nil
end

-- What Python calls the JSON value that starts with a given character.
local PYTHON_TYPE = { ["["] = "list", ['"'] = "str", t = "bool", f = "bool", n = "NoneType" }

-- The body as a JSON object, with Django REST framework's errors otherwise.
-- An empty body counts as an empty object, as it does for DRF.
function request:json_object()
  local text = self:body()
  if text == nil or text:match("^%s*$") then return {} end
  local value, err = json.decode(text)
  if value == nil then
    respond.bad_request("JSON parse error - " .. tostring(err))
  end
  local first = text:match("^%s*(%S)")
  if first ~= "{" then
    respond.abort(400, { non_field_errors = json.array({
      "Invalid data. Expected a dictionary, but got " .. (PYTHON_TYPE[first] or "int") .. "." }) })
  end
  return value
end

return request
