-- Many callers, one budget: concurrent callers of a rate-limited endpoint
-- share what the server allows instead of all waiting for the reset and
-- firing together. The fake's /fake/limited/ endpoint enforces a fixed window
-- itself and records every answer, 429s included.
local harness = require "harness"
local fake = harness.fake
local core = require "sentry.core"
local governor = require "sentry.governor"

local LIMIT, WINDOW = 10, 1 -- the endpoint: 10 requests per 1 s window
local CALLERS = 50
local RUN = 6                -- seconds the callers keep calling

local function unique(name)
  return name .. "-" .. tostring(math.random(1, 1e9))
end

local function limited_path(key)
  return "/fake/limited/" .. key .. "/"
end

local QUERY = { limit = LIMIT, window = WINDOW }

-- What the server answered for `key`: 200s from `from` to `to`, and every 429.
local function tally(key, from, to)
  local ok, rejected = 0, 0
  for _, request in ipairs(fake.requests(key)) do
    if request.status == 429 then rejected = rejected + 1 end
    if request.status == 200 and request.time >= from and request.time < to then ok = ok + 1 end
  end
  return ok, rejected
end

-- Runs `body(caller_index)` in CALLERS coroutines whose sleep yields: the
-- loop below resumes each when its wait is over, as an event loop would.
local function run_callers(body)
  local sleepers = {}
  local function sleep(seconds) coroutine.yield(seconds) end
  for i = 1, CALLERS do
    sleepers[i] = { thread = coroutine.create(function() body(i, sleep) end), wake = 0 }
  end
  while true do
    local next_one
    for _, sleeper in ipairs(sleepers) do
      if coroutine.status(sleeper.thread) ~= "dead" and (not next_one or sleeper.wake < next_one.wake) then
        next_one = sleeper
      end
    end
    if not next_one then return end
    local delay = next_one.wake - core.now()
    if delay > 0 then core.sleep(delay) end
    local ok, wait = coroutine.resume(next_one.thread)
    assert(ok, wait)
    next_one.wake = core.now() + (wait or 0)
  end
end

describe("one budget for every caller", function()
  setup(function()
    harness.server()
    math.randomseed(os.time())
  end)

  it("50 coroutines, each making a client per request, get 10/s through with at most 3 429s", function()
    local key = unique("callers")
    local started = core.now()
    local deadline = started + RUN
    local outcomes = { ok = 0, rate_limited = 0, other = {} }
    run_callers(function(_, sleep)
      while core.now() < deadline do
        -- the README's OpenResty pattern: a client per request
        local client = assert(harness.client { sleep = sleep })
        local res, err = client:get(limited_path(key), { query = QUERY })
        client:close()
        if res then
          outcomes.ok = outcomes.ok + 1
        elseif err.kind == "rate_limited" then
          outcomes.rate_limited = outcomes.rate_limited + 1
        else
          outcomes.other[#outcomes.other + 1] = tostring(err)
        end
      end
    end)
    local ok, rejected = tally(key, started, deadline)
    assert.are.same({}, outcomes.other)
    assert.is_true(rejected <= 3, rejected .. " responses 429")
    assert.is_true(ok >= 9 * RUN, ok .. " successes in " .. RUN .. " s")
    assert.is_true(ok <= (LIMIT + 1) * (RUN + 1), ok .. " successes: more than the endpoint allows")
  end)

  it("a batch of 50 at once spreads over the windows: no 429, at least 9 per second", function()
    local client = assert(harness.client { sleep = core.sleep })
    local key = unique("batch")
    local requests = {}
    for i = 1, CALLERS do requests[i] = { "GET", limited_path(key), { query = QUERY } } end
    local started = core.now()
    local results = client:batch(requests, { concurrency = CALLERS })
    local elapsed = core.now() - started
    for _, result in ipairs(results) do assert.are.equal(200, result.res and result.res.status) end
    local _, rejected = tally(key, started, math.huge)
    assert.is_true(rejected <= 3, rejected .. " responses 429")
    -- 50 requests at 10 per window: about 5 windows, never a burst per window reset
    assert.is_true(CALLERS / elapsed >= 9 * 0.75, string.format("%.1f requests/s", CALLERS / elapsed))
    local per_window = {}
    for _, request in ipairs(fake.requests(key)) do
      local window = math.floor(request.time / WINDOW)
      per_window[window] = (per_window[window] or 0) + 1
    end
    for window, count in pairs(per_window) do
      assert.is_true(count <= LIMIT, count .. " requests in window " .. window)
    end
    client:close()
  end)

  it("keeps to the windows when bodies arrive long after the headers (their Date)", function()
    -- a response read 0.4 s after its Date header must not look like a server
    -- clock a second behind: the window the requests aim at would then be the wrong one
    local client = assert(harness.client { sleep = core.sleep })
    local key = unique("slow-body")
    local requests = {}
    local query = { limit = LIMIT, window = WINDOW, body_ms = 400 }
    for i = 1, 4 * LIMIT do requests[i] = { "GET", limited_path(key), { query = query } } end
    local started = core.now()
    local results = client:batch(requests, { concurrency = 4 * LIMIT })
    for _, result in ipairs(results) do assert.are.equal(200, result.res and result.res.status) end
    local _, rejected = tally(key, started, math.huge)
    assert.is_true(rejected <= 1, rejected .. " responses 429")
    client:close()
  end)

  it("spreads a window's requests over it instead of sending them at its first instant", function()
    local client = assert(harness.client { sleep = core.sleep })
    local key = unique("spread")
    local requests = {}
    for i = 1, 3 * LIMIT do requests[i] = { "GET", limited_path(key), { query = QUERY } } end
    client:batch(requests, { concurrency = 3 * LIMIT })
    -- in a window after the first, requests arrive over most of it
    local by_window = {}
    for _, request in ipairs(fake.requests(key)) do
      local window = math.floor(request.time / WINDOW)
      local times = by_window[window] or {}
      times[#times + 1] = request.time - window * WINDOW
      by_window[window] = times
    end
    local widest = 0
    for _, times in pairs(by_window) do
      table.sort(times)
      if #times == LIMIT then widest = math.max(widest, times[#times] - times[1]) end
    end
    assert.is_true(widest >= 0.5 * WINDOW, string.format("a full window's requests spanned %.2f s", widest))
    client:close()
  end)

  it("refuses at once, with rate_limited, a wait longer than max_retry_wait", function()
    local key = unique("refuse")
    local client = assert(harness.client { sleep = core.sleep, max_retry_wait = 0.5 })
    local requests = {}
    for i = 1, 4 * LIMIT do requests[i] = { "GET", limited_path(key), { query = QUERY } } end
    local started = core.now()
    local results = client:batch(requests, { concurrency = 4 * LIMIT })
    local elapsed = core.now() - started
    local refused = 0
    for _, result in ipairs(results) do
      if result.err then
        assert.are.equal("rate_limited", result.err.kind)
        assert.matches("max_retry_wait", result.err.detail)
        refused = refused + 1
      end
    end
    assert.is_true(refused >= LIMIT, refused .. " refused")
    local _, rejected = tally(key, started, math.huge)
    assert.is_true(rejected <= 1, rejected .. " responses 429")
    assert.is_true(elapsed < 0.5 + WINDOW + 1, string.format("took %.1f s", elapsed))
    client:close()
  end)

  it("sends one request first to an endpoint nothing is known about", function()
    local client = assert(harness.client { sleep = core.sleep })
    local key = unique("probe")
    local requests = {}
    for i = 1, 5 do requests[i] = { "GET", "/fake/slow/", { query = { ms = 200, key = key } } } end
    local fresh = assert(harness.client { sleep = core.sleep, token = harness.tokens.legacy })
    fake.reset()
    local results = fresh:batch(requests, { concurrency = 5 })
    for _, result in ipairs(results) do assert.are.equal(200, result.res.status) end
    -- the first request ran alone; the other four together after it
    local stats = fake.stats()
    assert.is_true(stats.max_in_flight <= 4, stats.max_in_flight .. " in flight at once")
    client:close()
    fresh:close()
  end)

  it("does not hold requests back for a window whose Reset is long past", function()
    local client = assert(harness.client { sleep = core.sleep, token = harness.tokens.distinctive })
    local requests = {}
    for i = 1, 20 do requests[i] = { "GET", "/fake/concurrency/", { query = { ms = 100, stale_reset = 1 } } } end
    fake.reset()
    for _, result in ipairs(client:batch(requests, { concurrency = 10 })) do
      assert.are.equal(200, result.res.status)
    end
    -- one first, then ten at a time: such a header tells nothing about the window now
    local stats = fake.stats()
    assert.is_true(stats.max_in_flight >= 5, stats.max_in_flight .. " in flight at most")
    client:close()
  end)

  -- A place in flight its caller never gave back (a worker killed mid-request,
  -- with a shared store) is freed only after admission.FLIGHT_TTL; until then
  -- a request waits for a place no longer than it waits for a window.
  it("waits for a place in flight no longer than max_retry_wait", function()
    local token = harness.tokens.own_budget
    local client = assert(harness.client { token = token, sleep = core.sleep, max_retry_wait = 0.3 })
    assert(client:get("/fake/concurrency/", { query = { ms = 1, limit = 1 } }))
    -- the caller that dies holding the endpoint's only place
    assert.is_true(governor.for_token(token):enter("GET /api/0/fake/concurrency/"))
    local started = core.now()
    local res, err = client:get("/fake/concurrency/", { query = { ms = 1, limit = 1 } })
    local elapsed = core.now() - started
    assert.is_nil(res)
    assert.are.equal("rate_limited", err.kind)
    assert.matches("no place among the requests in flight came free in 0.3 s; not waiting longer than "
      .. "max_retry_wait", err.detail, 1, true)
    assert.is_true(elapsed >= 0.25 and elapsed < 2, string.format("took %.2f s", elapsed))
    -- the place comes back: the next request goes
    governor.for_token(token):learn("GET /api/0/fake/concurrency/", nil, true)
    assert(client:get("/fake/concurrency/", { query = { ms = 1, limit = 1 } }))
    client:close()
  end)

  it("shares the budget between clients of one token, never between tokens", function()
    local key = unique("share")
    local first = assert(harness.client())
    local second = assert(harness.client())
    local other = assert(harness.client { token = harness.tokens.user_read })
    assert(first:get(limited_path(key), { query = QUERY }))
    local seen = second:rate_limit("GET", limited_path(key))
    assert.are.equal(LIMIT, seen and seen.limit)
    assert.is_nil(other:rate_limit("GET", limited_path(key)))
    first:close()
    second:close()
    other:close()
  end)
end)

describe("a token's identity", function()
  local shell = require "shell"

  it("is its SHA-256, the same as sha256sum's, at every length around the block edges", function()
    for length = 0, 130 do
      local text = string.rep("s", length)
      local expected = shell.capture("printf '%s' " .. shell.quote(text) .. " | sha256sum"):match("^(%x+)")
      assert.are.equal(expected, core.sha256_hex(text), "length " .. length)
    end
  end)
end)
