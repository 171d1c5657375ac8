--- Parsing of Sentry DSNs (the keys SDKs use to send events).
--
-- A DSN is for event ingestion only; it is never an API credential. This
-- module exists so that the client can tell a DSN apart from an auth token
-- (see `sentry.token.check`) and so that callers can take one apart.
--
--     https://<public_key>@o<org_id>.ingest[.<region>].sentry.io/<project_id>
--     https://<public_key>:<secret_key>@host[:port][/path/prefix]/<project_id>
--
-- @module sentry.dsn

local dsn = {}

local url = require "sentry.url"

--- Whether a string looks like a DSN (or any URL carrying credentials).
--
-- Deliberately looser than `parse`: a malformed DSN pasted where a token
-- belongs should still be recognised as "not a token".
-- @param s any value
-- @treturn boolean
function dsn.looks_like(s)
  if type(s) ~= "string" then
    return false
  end
  return s:match("^%s*[Hh][Tt][Tt][Pp][Ss]?://[^/]*@") ~= nil
end

--- Parses a DSN.
--
-- Query strings and fragments are ignored; one trailing slash after the
-- project id is tolerated.
-- @tparam string s the DSN
-- @treturn[1] table `{ public_key, secret_key, scheme, host, port, path,
--   project_id, org_id, region, envelope_url }` where `port` is a number (the
--   scheme's default when the DSN names none), `path` is the prefix before the
--   project id ("" when there is none), `project_id` and `org_id` are strings,
--   `secret_key`, `org_id` and `region` may be nil, and `envelope_url` is
--   `scheme://host[:port]<path>/api/<project_id>/envelope/`.
-- @return[2] nil
-- @treturn[2] string what is wrong with the DSN (never echoing its keys)
-- @raise when `s` is not a string
function dsn.parse(s)
  if type(s) ~= "string" then
    error("bad argument #1 to 'parse' (string expected, got " .. type(s) .. ")", 2)
  end
  if s == "" then
    return nil, "DSN is empty"
  end
  local bad_at = s:find("[%s%c]")
  if bad_at then
    return nil, "DSN contains whitespace or a control character at position " .. bad_at
  end

  local scheme, authority, path = url.parts(s)
  if not scheme then
    return nil, "DSN must start with http:// or https://"
  end
  scheme = scheme:lower()
  if not url.DEFAULT_PORTS[scheme] then
    return nil, "DSN scheme must be http or https, got " .. scheme
  end

  path = path:match("^[^?#]*")
  local userinfo, hostport = authority:match("^(.*)@(.*)$")
  if not userinfo then
    return nil, "DSN has no public key: expected " .. scheme .. "://<public_key>@<host>/<project_id>"
  end
  local public_key, secret_key = userinfo:match("^([^:]*):(.*)$")
  if not public_key then
    public_key = userinfo
  end
  if public_key == "" then
    return nil, "DSN has an empty public key"
  end
  if secret_key == "" then
    secret_key = nil
  end

  local host, port = url.split_authority(hostport, url.DEFAULT_PORTS[scheme])
  if not host then
    return nil, "DSN " .. port
  end

  path = path:gsub("/$", "")
  local prefix, project_id = path:match("^(.*)/([^/]*)$")
  if not project_id or project_id == "" then
    return nil, "DSN has no project id: expected it as the last part of the path"
  end
  if not project_id:match("^%d+$") then
    return nil, "DSN project id must be numeric, got " .. project_id
  end

  -- Sentry's SaaS ingest hosts carry the org id, and a region for non-US data.
  local org_id, region = host:match("^o(%d+)%.ingest%.([%w%-]+)%.sentry%.io$")
  if not org_id then
    org_id = host:match("^o(%d+)%.ingest%.sentry%.io$")
  end

  local origin = scheme .. "://" .. host
  if port ~= url.DEFAULT_PORTS[scheme] then
    origin = origin .. ":" .. port
  end

  return {
    public_key = public_key,
    secret_key = secret_key,
    scheme = scheme,
    host = host,
    port = port,
    path = prefix,
    project_id = project_id,
    org_id = org_id,
    region = region,
    envelope_url = origin .. prefix .. "/api/" .. project_id .. "/envelope/",
  }
end

return dsn
