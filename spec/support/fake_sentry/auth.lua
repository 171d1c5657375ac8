-- Who is calling: the Authorization header checked the way Sentry (Django REST
-- framework's TokenAuthentication) checks it.
-- luacheck: globals ngx

local json = require "fake_sentry.json"
local scopes = require "fake_sentry.scopes"
local tokens = require "tokens"

local auth = {}

auth.NOT_PROVIDED = "Authentication credentials were not provided."
auth.NO_CREDENTIALS = "Invalid token header. No credentials provided."
auth.HAS_SPACES = "Invalid token header. Token string should not contain spaces."
auth.INVALID_TOKEN = "Invalid token"
auth.INVALID_ORG_TOKEN = "Invalid org token"

auth.USER = { id = "1", email = "jane@example.com", username = "jane", name = "Jane" }

local function rejected(detail)
  return { kind = "anonymous", error = detail }
end

-- "sntrys_" + base64(JSON) + "_" + secret; the org comes from the JSON.
local function org_caller(token)
  local payload, secret = token:match("^sntrys_([%w+/=]+)_([%w+/]+)$")
  if not payload or secret ~= tokens.ORG_TOKEN_SECRET then
    return rejected(auth.INVALID_ORG_TOKEN)
  end
  local claims = json.decode(ngx.decode_base64(payload) or "")
  if type(claims) ~= "table" or type(claims.org) ~= "string" then
    return rejected(auth.INVALID_ORG_TOKEN)
  end
  return { kind = "org", token = token, org = claims.org, scopes = { "org:ci" } }
end

-- Returns the caller: { kind = "user"|"legacy"|"org"|"anonymous", token, scopes
-- (expanded, sorted), org (org tokens only), error (the 401 detail, if any) }.
function auth.identify(header)
  local words = {}
  for word in (header or ""):gmatch("%S+") do words[#words + 1] = word end
  -- Other schemes are ignored, as if there were no header at all.
  if #words == 0 or words[1]:lower() ~= "bearer" then
    return rejected(auth.NOT_PROVIDED)
  end
  if #words == 1 then return rejected(auth.NO_CREDENTIALS) end
  if #words > 2 then return rejected(auth.HAS_SPACES) end

  local token = words[2]
  local grant = tokens.grants[token]
  if grant then
    return { kind = grant.kind, token = token, scopes = scopes.expand(grant.scopes) }
  end
  if token:sub(1, 7) == "sntrys_" then return org_caller(token) end
  return rejected(auth.INVALID_TOKEN)
end

function auth.is_user(caller)
  return caller.kind == "user" or caller.kind == "legacy"
end

return auth
