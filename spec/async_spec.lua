-- Non-blocking requests on a libuv loop (luv), as Neovim drives them.
local harness = require "harness"
local fake = harness.fake
local has_luv, uv = pcall(require, "luv")

local function unique(name)
  return name .. "-" .. tostring(math.random(1, 1e9))
end

-- Runs the loop until `done()` is true or `limit` seconds pass, counting ticks
-- of a 10 ms timer to show the loop never stalled.
local function run_loop(done, limit)
  local ticks = 0
  local ticker = uv.new_timer()
  ticker:start(10, 10, function() ticks = ticks + 1 end)
  local deadline = harness.now() + (limit or 10)
  while not done() and harness.now() < deadline do
    uv.run("once")
  end
  ticker:stop()
  ticker:close()
  return ticks
end

-- libuv finishes closing handles on the loop's next pass: run it, or the
-- handles are still half-closed when the Lua state (and luv) shuts down.
local function close(client)
  client:close()
  uv.run("nowait")
end

local describe_luv = has_luv and describe or pending

describe_luv("async requests on luv", function()
  setup(function()
    harness.server()
    math.randomseed(os.time())
  end)

  it("runs 10 requests to a 300 ms endpoint together while the loop keeps ticking", function()
    local client = assert(harness.client())
    client:async { loop = uv }
    local finished, statuses = 0, {}
    local started = harness.now()
    for i = 1, 10 do
      client:request_async("GET", "/fake/slow/", { query = { ms = 300 } }, function(res, err)
        assert(res, tostring(err))
        statuses[i] = res.status
        finished = finished + 1
      end)
    end
    local ticks = run_loop(function() return finished == 10 end)
    local elapsed = harness.now() - started
    assert.are.equal(10, finished)
    for i = 1, 10 do assert.are.equal(200, statuses[i]) end
    assert.is_true(elapsed < 1.5, "took " .. elapsed .. " s")
    assert.is_true(ticks >= 50, "the loop ticked only " .. ticks .. " times")
    close(client)
  end)

  it("returns at once: the callback runs only when the loop runs", function()
    local client = assert(harness.client())
    client:async { loop = uv }
    local called = false
    client:request_async("GET", "/fake/echo/now/", nil, function() called = true end)
    assert.is_false(called)
    run_loop(function() return called end)
    assert.is_true(called)
    close(client)
  end)

  it("waits out a 429 on a timer without blocking the loop", function()
    local client = assert(harness.client())
    client:async { loop = uv }
    local key = unique("async429")
    local result
    client:request_async("GET", "/fake/flaky/" .. key .. "/", { query = { fail = 1, status = 429, retry_after = 1 } },
      function(res, err) result = { res = res, err = err } end)
    local ticks = run_loop(function() return result ~= nil end)
    assert.are.equal(200, result.res.status)
    assert.are.equal(2, result.res.attempts)
    local requests = fake.requests(key)
    assert.is_true(requests[2].time - requests[1].time >= 1.0)
    assert.is_true(ticks >= 80, "the loop ticked only " .. ticks .. " times during the wait")
    close(client)
  end)

  it("delivers errors to the callback, never raising from the loop", function()
    local client = assert(harness.client { max_retries = 0 })
    client:async { loop = uv }
    local errs = {}
    client:request_async("GET", "/organizations/nope/", nil, function(_, err) errs[1] = err end)
    client:request_async("GET", "/projects/{org}/{project}/", nil, function(_, err) errs[2] = err end)
    run_loop(function() return errs[1] and errs[2] end)
    assert.are.equal("not_found", errs[1].kind)
    assert.are.equal("invalid", errs[2].kind)
    close(client)
  end)

  it("runs a batch and reports results in input order", function()
    local client = assert(harness.client())
    client:async { loop = uv }
    local results
    local requests = {}
    for i = 1, 20 do requests[i] = { "GET", "/fake/echo/" .. i .. "/" } end
    client:batch_async(requests, { concurrency = 5 }, function(list) results = list end)
    run_loop(function() return results ~= nil end)
    for i = 1, 20 do assert.are.equal("/api/0/fake/echo/" .. i .. "/", results[i].res.body.uri) end
    close(client)
  end)

  it("raises on a missing callback", function()
    local client = assert(harness.client())
    client:async { loop = uv }
    assert.has_error(function() client:request_async("GET", "/") end)
    close(client)
  end)
end)
