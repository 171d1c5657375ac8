-- luacheck: std +busted
local token = require "sentry.token"
local tokens = require "tokens"

local USER = "sntryu_" .. string.rep("a", 64)
local LEGACY = string.rep("c", 64)
local ORG_SECRET = tokens.ORG_TOKEN_SECRET

-- An org token carrying a raw JSON payload.
local function org_token(json)
  return "sntrys_" .. tokens.base64_encode(json) .. "_" .. ORG_SECRET
end
-- Encoded outside Lua (printf ... | base64), so the decoder is not only
-- checked against the specs' own encoder.
local ORG = "sntrys_eyJpYXQiOjE3MDQyMDU4MDIuNSwidXJsIjoiaHR0cHM6Ly9zZW50cnkuZXhhbXBsZS5jb20i"
  .. "LCJyZWdpb25fdXJsIjoiaHR0cHM6Ly9zZW50cnkuZXhhbXBsZS5jb20iLCJvcmciOiJhY21lIn0=_"
  .. ORG_SECRET
local ORG_SELF_HOSTED = "sntrys_eyJpYXQiOjEsInVybCI6bnVsbCwicmVnaW9uX3VybCI6Imh0dHA6Ly9sb2NhbGhvc3Q6"
  .. "OTAwMCIsIm9yZyI6InNlbGYifQ==_" .. ORG_SECRET

-- The secret part of each token: what must never be shown.
local SECRETS = { USER:sub(9), LEGACY:sub(9), ORG_SECRET, ORG:sub(9, 60) }

local function assert_no_secret(text)
  for _, secret in ipairs(SECRETS) do
    assert.is_nil(text:find(secret, 1, true), "a token leaked into: " .. token.scrub(text))
  end
end

describe("sentry.token", function()
  describe("parse", function()
    it("recognises a user token", function()
      assert.same({ type = "user" }, token.parse(USER))
    end)

    it("reads an org token's payload", function()
      assert.same({
        type = "org",
        org = "acme",
        url = "https://sentry.example.com",
        region_url = "https://sentry.example.com",
        iat = 1704205802.5,
      }, token.parse(ORG))
    end)

    it("reads org tokens in the shape the fake server mints", function()
      local info = token.parse(tokens.org_token("http://127.0.0.1:9000", "acme"))
      assert.equal("acme", info.org)
      assert.equal("http://127.0.0.1:9000", info.url)
      assert.equal(tokens.ORG_TOKEN_IAT, info.iat)
    end)

    it("has no url for a self-hosted org token whose payload says null", function()
      local info = token.parse(ORG_SELF_HOSTED)
      assert.equal("org", info.type)
      assert.equal("self", info.org)
      assert.is_nil(info.url)
      assert.equal("http://localhost:9000", info.region_url)
    end)

    it("decodes payloads of every padding length", function()
      for _, org in ipairs({ "a", "ab", "abc", "abcd" }) do
        local payload = '{"org":"' .. org .. '"}'
        local info = token.parse(org_token(payload))
        assert.equal(org, info.org, "payload " .. payload)
        assert.is_nil(info.invalid)
      end
    end)

    it("recognises legacy, app and integration tokens", function()
      assert.equal("legacy", token.parse(LEGACY).type)
      assert.equal("app", token.parse("sntrya_whatever").type)
      assert.equal("integration", token.parse("sntryi_whatever").type)
    end)

    it("calls everything else unknown", function()
      assert.same({ type = "unknown" }, token.parse("glpat-0123456789abcdef"))
      assert.same({ type = "unknown" }, token.parse(string.rep("c", 63)))
      assert.same({ type = "unknown" }, token.parse(string.rep("C", 64)))
    end)

    it("keeps the type of a malformed user token and says why", function()
      for _, bad in ipairs({ "sntryu_abc", "sntryu_" .. string.rep("A", 64), USER .. "0" }) do
        local info = token.parse(bad)
        assert.equal("user", info.type)
        assert.equal("expected 64 lowercase hex characters after sntryu_", info.invalid)
      end
    end)

    local malformed_org = {
      { "three underscores", ORG .. "_x", "exactly two underscores" },
      { "one underscore", "sntrys_abcd", "exactly two underscores" },
      { "bad base64", "sntrys_e!Jv_" .. ORG_SECRET, "not valid base64" },
      { "missing padding", "sntrys_" .. tokens.base64_encode('{"org":"abc"}'):gsub("=", "")
        .. "_" .. ORG_SECRET, "not valid base64" },
      { "not JSON", org_token("{org: acme}"), "not a JSON object" },
      { "a JSON array", org_token("[1,2]"), "not a JSON object" },
      { "no org", org_token('{"url": "https://sentry.io"}'), "names no organization" },
      { "a short secret", "sntrys_" .. tokens.base64_encode('{"org":"acme"}') .. "_abc", "secret" },
    }
    for _, case in ipairs(malformed_org) do
      it("marks an org token with " .. case[1] .. " invalid and trusts nothing in it", function()
        local info = token.parse(case[2])
        assert.equal("org", info.type)
        assert.is_truthy(info.invalid and info.invalid:find(case[3], 1, true), info.invalid)
        assert.is_nil(info.org)
        assert.is_nil(info.url)
        assert_no_secret(info.invalid)
      end)
    end

    it("raises for a non-string argument", function()
      assert.has_error(function() token.parse(42) end,
        "bad argument #1 to 'parse' (string expected, got number)")
    end)
  end)

  describe("check", function()
    it("accepts every token shape, including unknown ones", function()
      for _, good in ipairs({ USER, ORG, LEGACY, "sntrya_x", "some-other-token" }) do
        assert.is_true(token.check(good))
      end
    end)

    local function refused(value, expected)
      local ok, message = token.check(value)
      assert.is_nil(ok)
      assert.is_truthy(message:find(expected, 1, true), message)
      if type(value) == "string" then
        assert_no_secret(message)
      end
      return message
    end

    it("refuses what is not a string or is empty", function()
      refused(nil, "auth token must be a string, got nil")
      refused(12, "auth token must be a string, got number")
      refused("", "auth token is empty")
    end)

    it("tells a DSN from a token", function()
      local message = refused("https://" .. USER:sub(8, 39) .. "@o1.ingest.sentry.io/2",
        "this looks like a DSN")
      assert.is_truthy(message:find("event ingestion", 1, true))
      assert.is_truthy(message:find("Settings > Auth Tokens", 1, true))
      refused("https://public:secret@sentry.example.com/7", "looks like a DSN")
    end)

    it("says where whitespace is and how to fix it", function()
      refused(USER .. "\n", "whitespace at position 72; remove spaces/newlines copied with it")
      refused(" " .. USER, "whitespace at position 1")
      refused(USER:sub(1, 20) .. " " .. USER:sub(21), "whitespace at position 21")
    end)

    it("explains a pasted Authorization header value", function()
      refused("Bearer " .. USER, "starts with \"Bearer \"")
    end)

    it("finds control and non-ASCII characters", function()
      refused(USER:sub(1, 9) .. "\0" .. USER:sub(10), "control character at position 10")
      refused("\226\128\156" .. USER, "non-ASCII character at position 1")
    end)

    it("refuses a URL", function()
      refused("https://sentry.io/settings/account/api/auth-tokens/", "looks like a URL")
    end)
  end)

  describe("redact", function()
    it("keeps only the first 8 characters", function()
      assert.equal("sntryu_a********", token.redact(USER))
      assert.equal("sntrys_e********", token.redact(ORG))
      assert.equal("cccccccc********", token.redact(LEGACY))
    end)

    it("does not reveal the length", function()
      assert.equal(#token.redact(USER), #token.redact(ORG))
    end)

    it("masks short values entirely", function()
      assert.equal("********", token.redact("short-secret"))
    end)

    it("names missing values", function()
      assert.equal("(none)", token.redact(nil))
      assert.equal("(none)", token.redact(""))
      assert.equal("(not a string)", token.redact(12))
    end)
  end)

  describe("scrub", function()
    it("masks a bearer header", function()
      assert.equal("Authorization: Bearer sntryu_a********",
        token.scrub("Authorization: Bearer " .. USER))
    end)

    it("masks tokens inside JSON and keeps the rest", function()
      local body = '{"token":"' .. ORG .. '","user":"' .. USER .. '","n":1}'
      assert.equal('{"token":"sntrys_e********","user":"sntryu_a********","n":1}',
        token.scrub(body))
    end)

    it("masks a percent-encoded org token completely", function()
      local encoded = ORG:gsub("%+", "%%2B"):gsub("/", "%%2F"):gsub("=", "%%3D")
      local scrubbed = token.scrub("GET /x?token=" .. encoded .. "&a=1")
      assert.equal("GET /x?token=sntrys_e********&a=1", scrubbed)
    end)

    it("masks legacy hex tokens but not commit hashes", function()
      local sha = string.rep("d", 40)
      assert.equal("token cccccccc******** commit " .. sha,
        token.scrub("token " .. LEGACY .. " commit " .. sha))
    end)

    it("masks unknown-format bearer credentials", function()
      assert.equal("Bearer glpat-ab********",
        token.scrub("Bearer glpat-abcdefghijklmnopqrstuvwxyz0123"))
    end)

    it("leaves ordinary text and bare prefixes alone", function()
      local text = "user tokens start with sntryu_, org tokens with sntrys_"
      assert.equal(text, token.scrub(text))
    end)

    it("is idempotent", function()
      local text = "Bearer " .. USER .. " and " .. ORG .. " and " .. LEGACY
      local once = token.scrub(text)
      assert_no_secret(once)
      assert.equal(once, token.scrub(once))
    end)

    it("accepts numbers and raises for other types", function()
      assert.equal("42", token.scrub(42))
      assert.has_error(function() token.scrub(nil) end,
        "bad argument #1 to 'scrub' (string expected, got nil)")
    end)
  end)
end)
