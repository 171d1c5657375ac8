-- The token is never shown: not in any error (of every kind), tostring, hook
-- payload, log line or configuration display, nor anywhere inside the client
-- object. The secret part of tokens.distinctive cannot appear by accident, so
-- searching for it is enough. (spec/hosts/secrecy runs the whole suite this way.)
local harness = require "harness"
local sentry = require "sentry"
local tokens = harness.tokens
local fake = harness.fake

local MARKER = tokens.DISTINCTIVE_MARKER
local ORG_SECRET = tokens.ORG_TOKEN_SECRET

-- Everything reachable from a value, as text: tables once each, with their
-- __tostring, keys and values; functions' upvalues are not followed.
local function dump(value, seen, out)
  seen, out = seen or {}, out or {}
  if type(value) ~= "table" then
    out[#out + 1] = tostring(value)
    return out
  end
  if seen[value] then return out end
  seen[value] = true
  local mt = getmetatable(value)
  if mt and rawget(mt, "__tostring") then out[#out + 1] = tostring(value) end
  for key, item in pairs(value) do
    dump(key, seen, out)
    dump(item, seen, out)
  end
  return out
end

local function text_of(...)
  local out = {}
  for i = 1, select("#", ...) do dump((select(i, ...)), nil, out) end
  return table.concat(out, "\n")
end

local function assert_secret(...)
  local text = text_of(...)
  assert.is_nil(text:find(MARKER, 1, true), "the token leaked into: " .. text:sub(1, 500))
  assert.is_nil(text:find(ORG_SECRET, 1, true), "an org token's secret leaked into: " .. text:sub(1, 500))
  return text
end

describe("token secrecy", function()
  local server, client, seen, logs

  setup(function()
    server = harness.server()
  end)

  before_each(function()
    seen, logs = {}, {}
    local function keep(name) return function(info) seen[#seen + 1] = { name, info } end end
    client = assert(harness.client {
      token = tokens.distinctive, max_retries = 1, timeout = 2,
      hooks = { on_request = keep("on_request"), on_response = keep("on_response"), on_retry = keep("on_retry") },
      log = function(level, message) logs[#logs + 1] = level .. ": " .. message end,
    })
  end)

  after_each(function()
    -- every hook payload and log line of the test, too
    assert_secret(seen, logs)
    client:close()
  end)

  it("the searches themselves work: the marker is found where it is", function()
    assert.has_error(function() assert_secret({ nested = { "x" .. tokens.distinctive } }) end)
    assert.has_error(function() assert_secret(tokens.org_token(server.url, "acme")) end)
  end)

  it("tostring(client), open and closed, and everything inside the client", function()
    local shown = assert_secret(tostring(client), client)
    assert.matches("sntryu_f********", shown, 1, true)
    local other = assert(harness.client { token = tokens.distinctive })
    other:close()
    assert_secret(tostring(other), other)
  end)

  it("the requests actually carried the token (so the searches mean something)", function()
    local res = assert(client:get("/fake/echo/"))
    assert.are.equal("Bearer " .. tokens.distinctive, res.body.headers.authorization)
    assert.are.equal("user", assert(client:whoami()).token_type)
  end)

  it("hook payloads of successes, errors and retries", function()
    assert(client:get("/organizations/{org}/projects/"))
    client:post("/projects/{org}/{project}/releases/", { params = { project = "web" }, body = { version = "1" } })
    client:get("/fake/status/503/")
    assert.is_true(#seen >= 5)
    local names = {}
    for _, entry in ipairs(seen) do names[entry[1]] = true end
    assert.is_true(names.on_request and names.on_response and names.on_retry)
  end)

  local failures = {
    { "unauthorized", "/fake/status/401/" },
    { "forbidden", "/fake/status/403/" },
    { "not_found", "/organizations/nope/" },
    { "rate_limited", "/fake/status/429/" },
    { "http", "/fake/status/500/", { shape = "error_id" } },
    { "http", "/fake/status/502/", { shape = "html" } },
    { "http", "/fake/moved/" },
    { "http", "/fake/redirect-offsite/" },
    { "decode", "/fake/invalid-json/" },
    { "network", "/fake/close/" },
    { "network", "/fake/truncated/" },
    { "network", "/fake/garbage-header/", { raw = 1 } },
    { "network", "/fake/huge-header/", { bytes = 200 * 1024 } },
    { "timeout", "/fake/slow/", { ms = 3000 }, 0.2 },
    { "invalid", "https://elsewhere.example.com/api/0/" },
    { "invalid", "/organizations/{org}/{missing}/" },
  }
  for _, case in ipairs(failures) do
    local kind, path, query, timeout = case[1], case[2], case[3], case[4]
    it("a " .. kind .. " error (" .. path .. ")", function()
      local res, err = client:get(path, { query = query, timeout = timeout })
      assert.is_nil(res)
      assert.are.equal(kind, err.kind)
      assert_secret(tostring(err), err)
    end)
  end

  it("errors from the connection, TLS, the body limit and scope checks", function()
    local cases = {
      { { base_url = "http://127.0.0.1:1" }, "/" },
      { { base_url = server.https_url }, "/" },
      { { max_body_bytes = 100 }, "/fake/big/", { bytes = 1000 } },
      { { check_scopes = true }, "/organizations/{org}/", nil, "DELETE" },
    }
    for _, case in ipairs(cases) do
      local overrides = case[1]
      overrides.token, overrides.max_retries = tokens.distinctive, 0
      local c = assert(harness.client(overrides))
      local res, err = c:request(case[4] or "GET", case[2], { query = case[3] })
      assert.is_nil(res)
      assert_secret(tostring(err), err, tostring(c))
      c:close()
    end
  end)

  it("a proxy that echoes the Authorization header in its error page", function()
    local _, err = client:get("/fake/status/502/", { query = { shape = "echo_headers" } })
    assert.are.equal(502, err.status)
    assert.matches("Bearer sntryu_f********", err.body, 1, true) -- the body is scrubbed too
    assert.matches("Bearer sntryu_f********", err.detail, 1, true)
    assert_secret(tostring(err), err.detail, err.body)
  end)

  it("refused configurations, whatever is wrong with the token", function()
    for _, opts in ipairs {
      { token = tokens.distinctive .. "\n" },
      { token = " " .. tokens.distinctive },
      { token = "Bearer " .. tokens.distinctive },
      { token = "https://" .. tokens.distinctive .. "@o1.ingest.sentry.io/1" },
      { token = tokens.distinctive, region = "mars", base_url = harness.NONE },
      { token = tokens.distinctive, base_url = "http://sentry.example.com" },
      { token = tokens.distinctive, ca_file = "/nonexistent/" .. tokens.distinctive },
      { token = tokens.distinctive, timeout = -1 },
    } do
      local c, err = harness.client(opts)
      assert.is_nil(c)
      local text = tostring(err)
      assert.is_nil(text:find(MARKER .. MARKER, 1, true), text)
    end
  end)

  it("log lines: the insecure warning and the configuration warnings", function()
    local messages = {}
    local function log(level, message) messages[#messages + 1] = level .. ": " .. message end
    assert(harness.client { token = tokens.distinctive, base_url = server.https_url, insecure = true, log = log })
      :close()
    -- an org token whose URL and org disagree with the ones given
    assert(harness.client { token = tokens.org_token("https://other.example.com", "other"), org = "acme",
      log = log }):close()
    assert.is_true(#messages >= 2)
    assert_secret(messages)
  end)

  it("the configuration display", function()
    local shown, warnings = sentry.config.load { token = tokens.distinctive, config = false, env = function() end }
    local text = assert_secret(shown, warnings)
    assert.matches("sntryu_f", text, 1, true)
    shown = sentry.config.load { token = tokens.org_token(server.url, "acme"), config = false, env = function() end }
    assert_secret(shown)
  end)

  it("nothing in the fake's record of the requests is echoed back into errors", function()
    fake.reset()
    local _, err = client:get("/fake/flaky/" .. tostring(math.random(1e9)) .. "/", { query = { fail = 10, status = 503 } })
    assert.are.equal(503, err.status)
    assert_secret(tostring(err), err)
  end)
end)
