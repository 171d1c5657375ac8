-- Test tokens shared by the fake Sentry server and the specs.
--
-- Every token here has the shape of a real Sentry credential, so the client's
-- token parser sees the same strings it will meet in production. Plain Lua only:
-- this file is loaded both by busted (any Lua version) and inside nginx.

local tokens = {}

-- User auth tokens: "sntryu_" + 64 lowercase hex.
tokens.user_full = "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"
tokens.user_read = "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"

-- Pre-2023 user tokens: 64 lowercase hex without a prefix.
tokens.legacy = "5fe32a117dc784107c0d813f2ac1bf63e4d18d12d5ab5f409aec749bbf1e94cf"

-- Well-formed, but the server has never issued it.
tokens.unknown_to_server = "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"

-- A token only one spec uses, so its rate-limit budget starts empty whatever
-- ran before it in the process (budgets are per token and process).
tokens.own_budget = "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"

-- A marker that cannot appear by accident, so a spec can grep output for it to
-- prove the token never leaks into errors, logs or tostring().
tokens.DISTINCTIVE_MARKER = "feedfacecafebeef"
tokens.distinctive = "sntryu_" .. string.rep(tokens.DISTINCTIVE_MARKER, 4)
-- The same marker in a format Sentry does not issue (a self-hosted or older
-- token): the client cannot recognise it by its shape, only by its value.
tokens.distinctive_unknown = "SelfHostedToken-" .. string.rep(tokens.DISTINCTIVE_MARKER, 3)

-- The secret part of every organization token the fake server accepts: base64 of
-- 32 bytes without padding (43 characters), like Sentry's own secrets.
tokens.ORG_TOKEN_SECRET = "c2VudHJ5LWx1YSBmYWtlIG9yZyB0b2tlbiBzZWNyZXQ"

-- A fixed issue time keeps org tokens reproducible between runs.
tokens.ORG_TOKEN_IAT = 1700000000.25

local FULL_SCOPES = {
  "org:read", "org:write",
  "project:read", "project:write", "project:admin", "project:releases",
  "team:read", "team:write",
  "member:read",
  "event:read", "event:write",
  "alerts:read", "alerts:write",
}

local READ_SCOPES = {
  "org:read", "project:read", "team:read", "member:read", "event:read", "alerts:read",
}

-- What the fake server grants each static token, before hierarchy expansion.
-- kind follows sentry.token.parse: "user" for sntryu_, "legacy" for bare hex.
tokens.grants = {
  [tokens.user_full] = { kind = "user", scopes = FULL_SCOPES },
  [tokens.user_read] = { kind = "user", scopes = READ_SCOPES },
  [tokens.own_budget] = { kind = "user", scopes = READ_SCOPES },
  [tokens.legacy] = { kind = "legacy", scopes = { "org:read", "project:read", "event:read" } },
  [tokens.distinctive] = { kind = "user", scopes = FULL_SCOPES },
  [tokens.distinctive_unknown] = { kind = "user", scopes = FULL_SCOPES },
}

local BASE64_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

-- Standard, padded base64; arithmetic only, because Lua 5.1 has no bit operators.
local function base64_encode(bytes)
  local out = {}
  for i = 1, #bytes, 3 do
    local a, b, c = bytes:byte(i, i + 2)
    local n = a * 65536 + (b or 0) * 256 + (c or 0)
    local quad = {}
    for k = 4, 1, -1 do
      local index = n % 64
      quad[k] = BASE64_ALPHABET:sub(index + 1, index + 1)
      n = (n - index) / 64
    end
    if not b then quad[3] = "=" end
    if not c then quad[4] = "=" end
    out[#out + 1] = table.concat(quad)
  end
  return table.concat(out)
end
tokens.base64_encode = base64_encode

local function json_string(value)
  if value == nil then return "null" end
  local escaped = tostring(value):gsub('[%c"\\]', function(ch)
    return string.format("\\u%04x", ch:byte())
  end)
  return '"' .. escaped .. '"'
end

-- An organization auth token as Sentry mints it: "sntrys_" + base64 of Python's
-- json.dumps() of {iat, url, region_url, org} (key order and ", " / ": "
-- separators included) + "_" + the secret. url may be nil (self-hosted).
function tokens.org_token(url, org)
  assert(type(org) == "string", "org_token(url, org): org must be a string")
  local payload = string.format('{"iat": %.2f, "url": %s, "region_url": %s, "org": %s}',
    tokens.ORG_TOKEN_IAT, json_string(url), json_string(url), json_string(org))
  return "sntrys_" .. base64_encode(payload) .. "_" .. tokens.ORG_TOKEN_SECRET
end

return tokens
