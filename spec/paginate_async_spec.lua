-- Pagination without blocking, on a libuv loop (luv), as Neovim drives it.
local harness = require "harness"
local has_luv, uv = pcall(require, "luv")

-- Runs the loop until `done()` or `limit` seconds, counting 10 ms ticks.
local function run_loop(done, limit)
  local ticks = 0
  local ticker = uv.new_timer()
  ticker:start(10, 10, function() ticks = ticks + 1 end)
  local deadline = harness.now() + (limit or 10)
  while not done() and harness.now() < deadline do uv.run("once") end
  ticker:stop()
  ticker:close()
  return ticks
end

local describe_luv = has_luv and describe or pending

describe_luv("pagination without blocking", function()
  local client
  before_each(function()
    client = assert(harness.client())
    client:async { loop = uv }
  end)
  after_each(function()
    client:close()
    uv.run("nowait")
  end)

  it("collects 250 items over 3 pages while the loop keeps ticking", function()
    local items, err, state
    client:collect_async("/fake/items/", { query = { total = 250, ms = 100 } }, function(...)
      items, err, state = ...
    end)
    assert.is_nil(state) -- returned before the first page arrived
    local ticks = run_loop(function() return state ~= nil end)
    assert.is_nil(err)
    assert.are.equal(250, #items)
    assert.are.equal("250", items[250].id)
    assert.are.same({ pages = 3, count = 250, done = true }, { pages = state.pages, count = state.count,
      done = state.done })
    assert.is_true(ticks >= 15, "the loop ticked " .. ticks .. " times")
  end)

  it("walks pages with limit, stops when on_page returns false, and resumes from the cursor", function()
    local pages, finished = {}, nil
    client:pages_async("/fake/items/", { query = { total = 250 }, per_page = 40, limit = 200 }, function(page, res)
      pages[#pages + 1] = #page
      assert.are.equal(200, res.status)
      if #pages == 2 then return false end
    end, function(err, state) finished = { err = err, state = state } end)
    run_loop(function() return finished ~= nil end)
    assert.is_nil(finished.err)
    assert.are.same({ 40, 40 }, pages)
    assert.is_false(finished.state.done)
    local rest
    client:collect_async("/fake/items/", { query = { total = 250 }, cursor = finished.state.cursor },
      function(items) rest = items end)
    run_loop(function() return rest ~= nil end)
    assert.are.equal(170, #rest)
    assert.are.equal("81", rest[1].id)
  end)

  it("gives items one at a time, and a failed page to on_done with the state to resume", function()
    local seen, finished = 0, nil
    client:paginate_async("/fake/items/", { query = { total = 30 }, per_page = 10 }, function(item)
      seen = seen + 1
      assert.is_string(item.id)
    end, function(err) finished = { err = err } end)
    run_loop(function() return finished ~= nil end)
    assert.are.equal(30, seen)
    assert.is_nil(finished.err)

    local failure
    client:collect_async("/fake/status/404/", nil, function(items, err, state)
      failure = { items = items, err = err, state = state }
    end)
    run_loop(function() return failure ~= nil end)
    assert.is_nil(failure.items)
    assert.are.equal("not_found", failure.err.kind)
    assert.are.same({}, failure.state.items)
  end)
end)
