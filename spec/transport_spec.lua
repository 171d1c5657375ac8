-- sentry.transport: one object carries a client's requests, over libcurl or
-- (when the specs run inside nginx: spec/hosts/openresty-specs) nginx cosockets.
local harness = require "harness"
local config = require "sentry.config"
local transport = require "sentry.transport"

local function new_transport()
  return assert(transport.new(assert(config.settings {
    token = harness.tokens.user_full, transport = harness.transport(), user_agent = "sentry-lua/spec" })))
end

describe("sentry.transport", function()
  local api
  setup(function() api = harness.server().url:gsub("/?$", "/api/0/") end)

  it("performs one request over the carrier chosen when it was made", function()
    local carrier = new_transport()
    local res = assert(carrier:perform { method = "GET", target = api, headers = { Accept = "application/json" },
      timeout = 5 })
    assert.are.equal(200, res.status)
    carrier:close()
  end)

  it("makes no libcurl handle (no second copy of the token) when cosockets carry the requests", function()
    if harness.transport() ~= "ngx" then return pending("cosockets: spec/hosts/openresty-specs") end
    local carrier = new_transport()
    assert(carrier:perform { method = "GET", target = api, headers = {}, timeout = 5 })
    local engine = carrier:engine()
    engine:start(1, "GET", api, {}, nil, 5)
    while engine:in_flight() > 0 and #engine:completed() == 0 do engine:wait(0.1) end
    carrier:engine_done(engine)
    assert.is_nil(carrier.handle)
    carrier:close()
  end)

  it("gives an engine that stops a transfer in flight (cancel) and never reports it", function()
    local carrier = new_transport()
    local engine = carrier:engine()
    engine:start(1, "GET", api .. "fake/slow/?ms=3000", {}, nil, 5)
    engine:perform()
    assert.is_true(engine:cancel(1))
    assert.is_false(engine:cancel(1))
    assert.are.equal(0, engine:in_flight())
    local started = harness.now()
    engine:wait(0.2)
    engine:perform()
    assert.are.same({}, engine:completed())
    assert.is_true(harness.now() - started < 2)
    carrier:engine_done(engine)
    carrier:close()
  end)
end)
