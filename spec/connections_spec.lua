-- Connections and TLS handshakes, as counted by the server: the benchmark's
-- nginx (bench/server.lua), which offers HTTP/2 on one TLS listener and
-- HTTP/1.1 only on another, with a certificate made at test time. Not timed.
package.path = "bench/?.lua;" .. package.path
local bench_server = require "server"
local http = require "socket.http"
local sentry = require "sentry"
local tokens = require("harness").tokens

local LIST = "/api/0/organizations/acme/projects/"

describe("connections", function()
  local srv

  setup(function()
    local pwd = io.popen("pwd"):read("*l")
    srv = bench_server.start { bench_dir = pwd .. "/bench" }
  end)

  teardown(function()
    if srv then bench_server.stop(srv) end
  end)

  -- The server's counts for a port since the last call (which resets them).
  local function counts(port)
    local body, status = http.request(srv.url .. "/api/0/bench/stats/?port=" .. port)
    assert(status == 200, "stats: " .. tostring(status))
    return {
      connections = tonumber(body:match('"connections":(%d+)')),
      handshakes = tonumber(body:match('"handshakes":(%d+)')),
      requests = tonumber(body:match('"requests":(%d+)')),
    }
  end

  local function client_for(port)
    counts(port)
    return assert(sentry.new { token = tokens.user_full, base_url = "https://127.0.0.1:" .. port,
      ca_file = srv.ca_file, config = false, timeout = 10 })
  end

  local function run_batch(client, requests, concurrency)
    for i, result in ipairs(client:batch(requests, { concurrency = concurrency })) do
      assert(result.res and result.res.status == 200, "request " .. i .. ": " .. tostring(result.err))
    end
  end

  it("a batch of 50 over HTTP/2 uses one TCP connection and one TLS handshake", function()
    local client = client_for(srv.h2_port)
    local requests = {}
    for i = 1, 50 do requests[i] = { "GET", LIST, { query = { i = i } } } end
    run_batch(client, requests, 25)
    assert.are.same({ connections = 1, handshakes = 1, requests = 50 }, counts(srv.h2_port))
    client:close()
  end)

  it("a batch of 50 to several endpoints over HTTP/2 still uses one connection", function()
    -- each endpoint's first request goes out at once (nothing is known of their
    -- limits yet): they must wait for the one connection, not open their own
    local client = client_for(srv.h2_port)
    local paths = { LIST, "/api/0/bench/items/", "/api/0/bench/slow/" }
    local requests = {}
    for i = 1, 50 do requests[i] = { "GET", paths[i % #paths + 1], { query = { i = i } } } end
    run_batch(client, requests, 25)
    assert.are.same({ connections = 1, handshakes = 1, requests = 50 }, counts(srv.h2_port))
    client:close()
  end)

  for _, listener in ipairs { "h2_port", "h1_port" } do
    it("20 sequential requests make one TLS handshake (" .. listener .. ")", function()
      local client = client_for(srv[listener])
      for _ = 1, 20 do assert.are.equal(200, assert(client:get(LIST)).status) end
      assert.are.same({ connections = 1, handshakes = 1, requests = 20 }, counts(srv[listener]))
      client:close()
    end)
  end

  it("a batch over HTTP/1.1 only uses a pool no larger than its concurrency", function()
    local client = client_for(srv.h1_port)
    local requests = {}
    for i = 1, 50 do requests[i] = { "GET", "/api/0/bench/slow/", { query = { i = i } } } end
    run_batch(client, requests, 5)
    local seen = counts(srv.h1_port)
    assert.are.equal(50, seen.requests)
    assert.is_true(seen.connections <= 5, seen.connections .. " connections for concurrency 5")
    assert.are.equal(seen.connections, seen.handshakes)
    client:close()
  end)
end)
