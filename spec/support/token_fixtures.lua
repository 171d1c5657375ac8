-- Fake Sentry tokens for the specs. None of them is a real credential; the
-- specs still treat them as secrets and check they never show up in output.
local cjson = require "cjson"

local fixtures = {}

local ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

--- Standard padded base64, arithmetic only (runs on every Lua the specs use).
function fixtures.base64(bytes)
  local out = {}
  for i = 1, #bytes, 3 do
    local a, b, c = bytes:byte(i, i + 2)
    local n = a * 65536 + (b or 0) * 256 + (c or 0)
    local sextets = {
      math.floor(n / 262144) % 64, math.floor(n / 4096) % 64,
      math.floor(n / 64) % 64, n % 64,
    }
    local used = b and (c and 4 or 3) or 2
    for k = 1, 4 do
      if k <= used then
        out[#out + 1] = ALPHABET:sub(sextets[k] + 1, sextets[k] + 1)
      else
        out[#out + 1] = "="
      end
    end
  end
  return table.concat(out)
end

--- A user token whose hex part is `digit` repeated: "sntryu_aaaa...".
function fixtures.user(digit)
  return "sntryu_" .. string.rep(digit or "a", 64)
end

--- A legacy (unprefixed) token.
function fixtures.legacy(digit)
  return string.rep(digit or "c", 64)
end

fixtures.ORG_SECRET = "SCfZiqE9sBXMLR4YbKwkwvB+uxJ3weOdtm2ljbKSgCM"

--- An org token carrying `payload` (a table, or raw JSON text).
function fixtures.org(payload)
  local json = type(payload) == "string" and payload or cjson.encode(payload)
  return "sntrys_" .. fixtures.base64(json) .. "_" .. fixtures.ORG_SECRET
end

return fixtures
