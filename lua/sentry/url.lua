--- URLs: the API root, path templates, query strings, same-origin checks.
-- @module sentry.url
local json = require "sentry.json"
local text = require "sentry.text"

local url = {}

local REGIONS = {
  us = "https://us.sentry.io/api/0/",
  de = "https://de.sentry.io/api/0/",
}

--- The default API root.
url.DEFAULT_ROOT = "https://sentry.io/api/0/"

--- Placeholder names that mean the same thing in Sentry's path templates.
local ALIASES = {
  organization_id_or_slug = "org", organization_slug = "org", org = "org",
  project_id_or_slug = "project", project_slug = "project", project = "project",
}

--- Percent-encodes every byte outside RFC 3986's unreserved set, "/" included,
-- so a value never becomes a new path segment.
-- @tparam string s
-- @treturn string
local PERCENT_ENCODED = {} -- byte -> "%XX" (a table, not a callback: LuaJIT compiles no closure)
for byte = 0, 255 do PERCENT_ENCODED[string.char(byte)] = string.format("%%%02X", byte) end

function url.encode(s)
  return (s:gsub("[^%w%-%._~]", PERCENT_ENCODED))
end

local PERCENT_DECODED = {} -- "XX" in any case -> the byte
for byte = 0, 255 do
  local hex = string.format("%02X", byte)
  PERCENT_DECODED[hex], PERCENT_DECODED[hex:lower()] = string.char(byte), string.char(byte)
  PERCENT_DECODED[hex:sub(1, 1):lower() .. hex:sub(2)] = string.char(byte)
  PERCENT_DECODED[hex:sub(1, 1) .. hex:sub(2):lower()] = string.char(byte)
end

--- Decodes %XX escapes (and nothing else).
-- @tparam string s
-- @tparam ?boolean form also "+" as a space, as in a form-encoded query
-- @treturn string
function url.decode(s, form)
  if form then s = s:gsub("%+", " ") end
  if not s:find("%", 1, true) then return s end
  return (s:gsub("%%(%x%x)", PERCENT_DECODED))
end

--- The default port of each scheme the client speaks.
url.DEFAULT_PORTS = { http = 80, https = 443 }

--- Cuts "scheme://authority..." into its three raw parts, checking nothing else.
-- @tparam string s
-- @treturn ?string scheme (as written), or nil when `s` has no "scheme://"
-- @treturn string authority
-- @treturn string the rest (path, query, fragment)
function url.parts(s)
  return s:match("^([%a][%w+.-]*)://([^/?#]*)(.*)$")
end

--- Splits an authority's "host", "host:port", "[v6]" or "[v6]:port" (no userinfo).
-- @tparam string authority
-- @tparam number default_port the port when none is given
-- @treturn ?string the host, lower-cased
-- @treturn number|string the port, or what was wrong
function url.split_authority(authority, default_port)
  local host, rest
  if authority:sub(1, 1) == "[" then
    host, rest = authority:match("^(%[[%x:.]+%])(.*)$")
    if not host then return nil, "host is not a valid IPv6 address in brackets" end
  else
    host, rest = authority:match("^([^:]*)(.*)$")
  end
  if host == "" then return nil, "has no host" end
  local digits = rest:match("^:?(%d*)$") -- RFC 3986 allows "host:" (the default port)
  if not digits then return nil, "port must be a number" end
  local port = tonumber(digits) or default_port
  if port < 1 or port > 65535 then return nil, "port must be between 1 and 65535" end
  return host:lower(), port
end

--- Splits an absolute http(s) URL.
-- @tparam string s
-- @treturn ?table `{ scheme, host, port, path }` (path starts with "/"), or nil
function url.split(s)
  local scheme, authority, rest = url.parts(s)
  if not scheme then return nil end
  scheme = scheme:lower()
  if not url.DEFAULT_PORTS[scheme] then return nil end
  if authority:find("@", 1, true) then return nil end -- credentials in URLs are refused
  local host, port = url.split_authority(authority, url.DEFAULT_PORTS[scheme])
  if not host then return nil end
  local path = rest:match("^[^?#]*")
  if path == "" then path = "/" end
  return { scheme = scheme, host = host, port = port, path = path,
    query = rest:match("%?([^#]*)") }
end

--- Splits a URL's query into its "key=value" parts, decoded as Sentry's
-- server reads a form value.
-- @tparam string target
-- @treturn string the URL before its query
-- @treturn table `{ { raw =, key =, value = }, ... }` in order
function url.query_parts(target)
  local base, query = target:match("^([^?#]*)%??([^#]*)")
  local parts = {}
  for raw in query:gmatch("[^&]+") do
    local key, value = raw:match("^([^=]*)=?(.*)$")
    parts[#parts + 1] = { raw = raw, key = url.decode(key, true), value = url.decode(value, true) }
  end
  return base, parts
end

--- The origin ("scheme://host:port") of an absolute URL, or nil.
-- @tparam string s
-- @treturn ?string
function url.origin(s)
  local parts = url.split(s)
  return parts and (parts.scheme .. "://" .. parts.host .. ":" .. parts.port) or nil
end

--- Is the host a loopback address (where plain http carries no risk)?
-- @tparam string host
-- @treturn boolean
function url.is_loopback(host)
  return host == "localhost" or host == "[::1]" or host:match("^127%.%d+%.%d+%.%d+$") ~= nil
end

--- Resolves the API root from `base_url` or `region`.
-- @tparam table opts `{ base_url, region, allow_http }`
-- @treturn ?string the root, ending in "/api/0/"
-- @treturn ?string what was wrong
function url.api_root(opts)
  local base, region = opts.base_url, opts.region
  if base and region then
    return nil, "give either base_url or region, not both"
  end
  if region then
    local root = REGIONS[region]
    if not root then
      return nil, string.format("unknown region %q: use \"us\" or \"de\", or base_url for self-hosted", region)
    end
    return root
  end
  if not base then return url.DEFAULT_ROOT end
  local parts = url.split(base)
  if not parts or parts.query then
    return nil, string.format("base_url %q is not an http(s) URL such as https://sentry.example.com", base)
  end
  if parts.scheme == "http" and not url.is_loopback(parts.host) and not opts.allow_http then
    return nil, "base_url uses plain http to a remote host, which would expose the token; "
      .. "use https, or set allow_http = true if you really mean it"
  end
  local root = text.trim_end(base:match("^[^?#]*"), "/")
  if not root:match("/api/0$") then root = root .. "/api/0" end
  return root .. "/"
end

--- The value of a path placeholder: `params[name]`, else (for the names of
-- the organization and the project, e.g. `organization_id_or_slug`) the
-- other name's value in `params`, else `defaults.org` / `defaults.project`.
-- @tparam string name
-- @tparam ?table params
-- @tparam table defaults `{ org =, project = }`
-- @return the value, or nil
-- @treturn ?string the default's name (`"org"`, `"project"`) when the name has one
function url.param_value(name, params, defaults)
  local value = params and params[name]
  local alias = ALIASES[name]
  if value == nil and alias and params then value = params[alias] end
  if value == nil and alias then value = defaults[alias] end
  return value, alias
end

-- One placeholder's value, encoded: the text, or nil and what is wrong.
local function placeholder(name, params, defaults)
  local value = url.param_value(name, params, defaults)
  if value == nil then return nil, "missing" end
  if type(value) ~= "string" and type(value) ~= "number" then
    error(string.format("params.%s must be a string or a number", name), 0)
  end
  if type(value) == "number" then
    local digits, problem = json.number(value) -- every digit of a 16-digit id, on every Lua
    if not digits then return nil, string.format("params.%s is %s: %s", name, tostring(value), problem) end
    value = digits
  end
  -- Encoding would make these harmless, but no Sentry slug or id has them:
  -- such a value is a mistake or an attack, and is refused before sending.
  if value:find("[%z\r\n]") then
    return nil, string.format("params.%s contains a line break or NUL byte; refusing to send it", name)
  elseif value == "" or value == "." or value == ".." then
    -- "." and ".." would name another endpoint (/members/../ is the organization itself)
    return nil, string.format("params.%s is %q, which is not a slug or id: it would change "
      .. "the endpoint the request reaches; refusing to send it", name, value)
  end
  return url.encode(value)
end

-- url.fill's work when the template has placeholders: a loop of plain
-- searches, no gsub callback (LuaJIT compiles no closure: with one, every
-- request with a placeholder ran interpreted).
local function fill_placeholders(template, params, defaults)
  local parts, count, from, search = {}, 0, 1, 1
  local missing, unsafe
  while true do
    local open = template:find("{", search, true)
    local close = open and template:find("}", open + 1, true)
    if not close then break end
    local name = template:sub(open + 1, close - 1)
    if name:find("^[%w_]+$") then
      local encoded, problem = placeholder(name, params, defaults)
      if problem == "missing" then
        missing = missing or name
      elseif problem then
        unsafe = unsafe or problem
      end
      parts[count + 1], parts[count + 2] = template:sub(from, open - 1), encoded or ""
      count = count + 2
      from, search = close + 1, close + 1
    else
      search = open + 1 -- "{" not opening a placeholder stays as it is
    end
  end
  if unsafe then return nil, unsafe end
  if missing then
    local hint = ALIASES[missing] and string.format(" or set %s in sentry.new", ALIASES[missing]) or ""
    return nil, string.format("path needs {%s}: pass params = { %s = ... }%s", missing, missing, hint)
  end
  parts[count + 1] = template:sub(from)
  return table.concat(parts)
end

--- Fills `{name}` placeholders in a path template.
-- @tparam string template
-- @tparam ?table params explicit values
-- @tparam table defaults `{ org =, project = }` from the client
-- @treturn ?string the path with encoded values
-- @treturn ?string what was missing, or which value held CR, LF or NUL
function url.fill(template, params, defaults)
  if not template:find("{", 1, true) then return template end -- nothing to fill
  return fill_placeholders(template, params, defaults)
end

local function query_value(key, value)
  local kind = type(value)
  if kind == "string" then return value end
  if kind == "number" then
    local digits, problem = json.number(value)
    if not digits then return nil, string.format("query.%s is %s: %s", key, tostring(value), problem) end
    return digits
  end
  if kind == "boolean" then return value and "true" or "false" end
  error(string.format("query.%s must be a string, number, boolean or an array of them", key), 0)
end

--- Encodes a query table; keys sorted, arrays repeat the key.
-- @tparam ?table query
-- @treturn ?string "" or "a=1&b=2"
-- @treturn ?string what was wrong (a NaN or infinite number)
function url.encode_query(query)
  if query == nil then return "" end
  local keys = {}
  for key in pairs(query) do
    if type(key) ~= "string" then error("query keys must be strings", 0) end
    keys[#keys + 1] = key
  end
  table.sort(keys)
  local parts = {}
  for _, key in ipairs(keys) do
    local value = query[key]
    local values = type(value) == "table" and value or { value }
    for _, item in ipairs(values) do
      local encoded, problem = query_value(key, item)
      if not encoded then return nil, problem end
      parts[#parts + 1] = url.encode(key) .. "=" .. url.encode(encoded)
    end
  end
  return table.concat(parts, "&")
end

--- Adds an encoded query to a URL that may already have one.
-- @tparam string target
-- @tparam string query
-- @treturn string
function url.with_query(target, query)
  if query == "" then return target end
  if not target:find("?", 1, true) then return target .. "?" .. query end
  if target:sub(-1) == "?" or target:sub(-1) == "&" then return target .. query end
  return target .. "&" .. query
end

--- Resolves a Location header against the URL of the request that got it
-- (RFC 3986 section 5.2, for the forms servers send: absolute, "//host/...",
-- "/path", "path" and "?query").
-- @tparam string base the request's absolute URL
-- @tparam string location the header's value
-- @treturn ?string an absolute URL, or nil when it cannot be resolved
function url.join(base, location)
  if type(location) ~= "string" or location == "" or location:find("[%c ]") then return nil end
  location = location:gsub("#.*$", "")
  if location:match("^[%a][%w+.-]*:") then return url.split(location) and location or nil end
  local scheme, authority, rest = url.parts(base)
  if not scheme then return nil end
  local path = rest:match("^[^?#]*")
  if location:sub(1, 2) == "//" then return scheme .. ":" .. location end
  if location:sub(1, 1) == "/" then return scheme .. "://" .. authority .. location end
  if location:sub(1, 1) == "?" then return scheme .. "://" .. authority .. (path ~= "" and path or "/") .. location end
  local directory = path:match("^(.*/)") or "/"
  local segments = {}
  for segment in (directory .. location):gmatch("[^/]*/?") do
    if segment == "" then break end
    if segment == "../" or segment == ".." then
      if #segments > 1 then segments[#segments] = nil end
    elseif segment ~= "./" and segment ~= "." then
      segments[#segments + 1] = segment
    end
  end
  return scheme .. "://" .. authority .. table.concat(segments)
end

-- Is the segment "." or ".." once percent-decoded ("%2E%2e" included)?
local function is_dot_segment(segment)
  local decoded = segment:gsub("%%2[Ee]", ".")
  return decoded == "." or decoded == ".."
end

--- Checks that a URL stays inside the API root: same origin, a path that
-- starts with the root's path and has no "." or ".." segment (servers and
-- libcurl would resolve those into another endpoint).
-- @tparam string root the API root (ends in "/api/0/")
-- @tparam string target an absolute URL
-- @treturn ?string target, when it stays inside
-- @treturn ?string what was wrong
function url.within_root(root, target)
  -- The common case, a path under the root with no "." or "%" at all, needs
  -- no parsing: nothing in it can be a dot segment.
  -- (a "." or "%" in the query takes the long way, which reads it right)
  local after_root = #root + 1
  if target:sub(1, #root) == root and not target:find(".", after_root, true)
      and not target:find("%", after_root, true) then
    return target
  end
  local parts, root_parts = url.split(target), url.split(root)
  local origin, root_origin = url.origin(target), url.origin(root)
  if origin ~= root_origin then
    return nil, (origin or target) .. " is another origin, and the token is only ever sent to " .. root_origin
  end
  for segment in parts.path:gmatch("[^/]+") do
    if is_dot_segment(segment) then
      return nil, string.format("refusing a path with a %q segment: it would reach another endpoint than "
        .. "the one named (%s)", segment, parts.path)
    end
  end
  if parts.path:sub(1, #root_parts.path) ~= root_parts.path then
    return nil, "refusing a path outside the API root " .. root_parts.path .. ": " .. parts.path
  end
  return target
end

--- Builds the full URL for a request path against the API root.
-- @tparam string root the API root (ends in "/api/0/")
-- @tparam string path relative ("/organizations/..."), "/api/0/..." or absolute
-- @treturn ?string the URL
-- @treturn ?string what was wrong
function url.resolve(root, path)
  if path:find("://", 1, true) and path:match("^[%a][%w+.-]*://") then return url.within_root(root, path) end
  -- the path after its leading slashes and "api/0/" (plain string calls: the hot path)
  local start = 1
  while path:byte(start) == 47 do start = start + 1 end
  if path:sub(start, start + 5) == "api/0/" then
    start = start + 6
  elseif path:sub(start) == "api/0" then
    start = #path + 1
  end
  return url.within_root(root, root .. path:sub(start))
end

return url
