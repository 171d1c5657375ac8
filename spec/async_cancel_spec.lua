-- Cancelling non-blocking requests and batches (luv, as Neovim drives them).
local harness = require "harness"
local fake = harness.fake
local has_luv, uv = pcall(require, "luv")

-- Runs the loop until `done()` or `limit` seconds pass.
local function run_until(done, limit)
  local deadline = harness.now() + (limit or 10)
  while not done() and harness.now() < deadline do uv.run("once") end
end

-- Runs the loop for `seconds`, whatever happens.
local function run_for(seconds)
  local timer = uv.new_timer()
  local over = false
  timer:start(math.floor(seconds * 1000), 0, function() over = true end)
  run_until(function() return over end, seconds + 1)
  timer:close()
end

local describe_luv = has_luv and describe or pending

describe_luv("cancelling async requests", function()
  local client
  before_each(function()
    client = assert(harness.client())
    client:async { loop = uv, concurrency = 1 }
    fake.reset()
  end)
  after_each(function()
    client:close()
    uv.run("nowait")
  end)

  it("stops a transfer in flight: the callback runs once, at once, with kind cancelled", function()
    local calls = {}
    local started = harness.now()
    local handle = client:request_async("GET", "/fake/slow/", { query = { ms = 2000 } }, function(res, err)
      calls[#calls + 1] = { res = res, err = err, at = harness.now() - started }
    end)
    run_for(0.2)
    assert.is_true(handle:cancel())
    run_until(function() return #calls > 0 end)
    run_for(0.1)
    assert.are.equal(1, #calls)
    assert.is_nil(calls[1].res)
    assert.are.equal("cancelled", calls[1].err.kind)
    assert.is_true(calls[1].at < 1.8, "called back after " .. calls[1].at .. " s") -- uncancelled: 2 s
    assert.is_false(handle:cancel()) -- once finished, nothing left to cancel
    -- the cancelled transfer's connection is closed, not reused
    local after
    client:request_async("GET", "/fake/echo/", nil, function(res) after = res end)
    run_until(function() return after ~= nil end)
    assert.are.equal(200, after.status)
    assert.are.equal(2, fake.stats().connections)
  end)

  it("drops a request still waiting its turn: the server never sees it", function()
    local first, second
    client:request_async("GET", "/fake/slow/", { query = { ms = 300 } }, function(res) first = res end)
    local queued = client:request_async("GET", "/fake/echo/never/", nil, function(res, err)
      second = { res = res, err = err }
    end)
    assert.is_true(queued:cancel())
    run_until(function() return first ~= nil and second ~= nil end)
    assert.are.equal(200, first.status)
    assert.are.equal("cancelled", second.err.kind)
    assert.is_nil(fake.stats().by_path["/api/0/fake/echo/never/"])
  end)

  it("cancels what a batch still has pending; its callback runs once with every result", function()
    local calls = {}
    local requests = {}
    for i = 1, 5 do requests[i] = { "GET", "/fake/slow/", { query = { ms = 150 * i } } } end
    local handle = client:batch_async(requests, { concurrency = 1 }, function(results) calls[#calls + 1] = results end)
    run_for(0.3)
    assert.is_true(handle:cancel())
    run_until(function() return #calls > 0 end)
    run_for(0.1)
    assert.are.equal(1, #calls)
    local results = calls[1]
    assert.are.equal(5, #results)
    -- the first may have finished before the cancel (not under valgrind); the last
    -- cannot have: it had 750 ms to go behind four others at concurrency 1
    local cancelled = 0
    for i = 1, 5 do
      local result = results[i]
      if result.res then
        assert.are.equal(200, result.res.status)
      else
        assert.are.equal("cancelled", result.err.kind, "request " .. i)
        cancelled = cancelled + 1
      end
    end
    assert.is_true(cancelled >= 4, cancelled .. " cancelled")
    assert.are.equal("cancelled", results[5].err.kind)
    assert.is_false(handle:cancel())
  end)
end)
