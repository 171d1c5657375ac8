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

describe("sentry.transport and the proxy environment (libcurl)", function()
  local source_dir = debug.getinfo(1, "S").source:sub(2):match("^(.*)/[^/]*$") or "."
  local repo_root = io.popen("cd '" .. source_dir .. "/..' && pwd"):read("*l")

  -- One GET in a child process whose environment is `variables`; its outcome.
  local function get_in_child(variables)
    local cpath = package.cpath:gsub("[^;]+", function(entry)
      return entry:sub(1, 1) == "/" and entry or repo_root .. "/" .. entry:gsub("^%./", "")
    end)
    local script = string.format([[
      local client = assert(require("sentry").new { token = %q, base_url = %q, config = false, timeout = 5,
        max_retries = 0 })
      local res, err = client:get("/organizations/acme/")
      io.write(res and ("status " .. res.status) or ("error " .. err.kind))
    ]], harness.tokens.user_full, harness.server().url)
    local assignments = { "LUA_PATH='" .. repo_root .. "/lua/?.lua;" .. repo_root .. "/lua/?/init.lua;;'",
      "LUA_CPATH='" .. cpath .. "'" }
    for name, value in pairs(variables) do assignments[#assignments + 1] = name .. "='" .. value .. "'" end
    -- the rest of the environment stays (a sanitizer's preload, for one)
    local unset = {}
    for _, name in ipairs { "http_proxy", "https_proxy", "all_proxy", "no_proxy" } do
      unset[#unset + 1] = "-u " .. name .. " -u " .. name:upper()
    end
    local pipe = io.popen("env " .. table.concat(unset, " ") .. " " .. table.concat(assignments, " ") .. " "
      .. harness.interpreter()
      .. " -e \"" .. script:gsub('"', '\\"') .. "\" 2>&1")
    local out = pipe:read("*a")
    pipe:close()
    return out
  end

  it("goes through a proxy the environment names when the client is made, or none", function()
    if harness.transport() ~= "curl" then return pending("libcurl reads the proxy variables") end
    local dead = "http://127.0.0.1:9" -- nothing listens there
    assert.are.equal("status 200", get_in_child {})
    assert.are.equal("error network", get_in_child { http_proxy = dead })
    assert.are.equal("error network", get_in_child { ALL_PROXY = dead })
    assert.are.equal("status 200", get_in_child { http_proxy = dead, no_proxy = "127.0.0.1" })
  end)
end)
