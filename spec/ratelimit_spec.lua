-- Rate limits and retries against the fake Sentry: waits are measured by the
-- server's own arrival times, never by trusting the client.
local harness = require "harness"
local fake = harness.fake

local function unique(name)
  return name .. "-" .. tostring(math.random(1, 1e9))
end

-- Real sleeping (the harness default is a no-op, to keep other specs fast).
local function sleeping_client(overrides)
  overrides = overrides or {}
  overrides.sleep = harness.NONE
  return assert(harness.client(overrides))
end

local function arrivals(key)
  local times = {}
  for i, request in ipairs(fake.requests(key)) do times[i] = request.time end
  return times
end

describe("rate limits and retries", function()
  setup(function()
    harness.server()
    math.randomseed(os.time())
  end)

  describe("429", function()
    it("waits for a Retry-After in seconds, then succeeds", function()
      local client = sleeping_client()
      local key = unique("ra")
      local res = assert(client:get("/fake/flaky/" .. key .. "/", { query = { fail = 1, status = 429, retry_after = 1 } }))
      assert.are.equal(200, res.status)
      assert.are.equal(2, res.attempts)
      local times = arrivals(key)
      assert.are.equal(2, #times)
      local waited = times[2] - times[1]
      assert.is_true(waited >= 1.0, "early: " .. waited)
      assert.is_true(waited <= 1.35, "late: " .. waited)
      client:close()
    end)

    it("waits for a Retry-After given as an HTTP-date", function()
      local client = sleeping_client()
      local key = unique("rad")
      assert(client:get("/fake/flaky/" .. key .. "/",
        { query = { fail = 1, status = 429, retry_after = 2, retry_after_date = 1 } }))
      local requests = fake.requests(key)
      assert.are.equal(2, #requests)
      -- the server sent Retry-After: HTTP-date of floor(arrival + 2)
      local due = math.floor(requests[1].time + 2)
      assert.is_true(requests[2].time >= due, "early by " .. (due - requests[2].time))
      assert.is_true(requests[2].time <= due + 0.35, "late by " .. (requests[2].time - due))
      client:close()
    end)

    it("waits until X-Sentry-Rate-Limit-Reset when there is no Retry-After", function()
      local client = sleeping_client()
      local key = unique("reset")
      assert(client:get("/fake/flaky/" .. key .. "/", { query = { fail = 1, status = 429, reset_in = 2 } }))
      local requests = fake.requests(key)
      assert.are.equal(2, #requests)
      -- the server sent X-Sentry-Rate-Limit-Reset: floor(arrival) + 2
      local due = math.floor(requests[1].time) + 2
      assert.is_true(requests[2].time >= due, "early by " .. (due - requests[2].time))
      assert.is_true(requests[2].time <= due + 0.45, "late by " .. (requests[2].time - due))
      client:close()
    end)

    for _, clock in ipairs { 30, -30 } do
      it(string.format("waits until Reset on the server's clock when it is %+d s off ours", clock), function()
        local client = sleeping_client { max_retry_wait = 10 }
        local key = unique("skew")
        assert(client:get("/fake/flaky/" .. key .. "/", { query = { fail = 1, status = 429, reset_in = 2, clock = clock } }))
        local requests = fake.requests(key)
        assert.are.equal(2, #requests)
        -- Reset: floor(arrival + clock) + 2 on the server's clock; Date tells the skew to within
        -- a second, and the wait errs long
        local due = math.floor(requests[1].time + clock) + 2 - clock
        assert.is_true(requests[2].time >= due - 0.05, "early by " .. (due - requests[2].time))
        assert.is_true(requests[2].time <= due + 1.45, "late by " .. (requests[2].time - due))
        client:close()
      end)
    end

    it("backs off with jitter when the 429 says nothing about time", function()
      local waits = {}
      local client = assert(harness.client { sleep = function(s) waits[#waits + 1] = s end,
        max_retries = 3, backoff_base = 1, backoff_cap = 30 })
      local key = unique("nohint")
      assert(client:get("/fake/flaky/" .. key .. "/", { query = { fail = 3, status = 429 } }))
      assert.are.equal(3, #waits)
      for attempt, wait in ipairs(waits) do
        assert.is_true(wait >= 0 and wait <= 2 ^ (attempt - 1), "wait " .. wait .. " on attempt " .. attempt)
      end
      client:close()
    end)

    it("does not sleep a wait longer than max_retry_wait", function()
      local client = sleeping_client { max_retry_wait = 5 }
      local key = unique("long")
      local started = harness.now()
      local res, err = client:get("/fake/flaky/" .. key .. "/", { query = { fail = 1, status = 429, retry_after = 120 } })
      assert.is_nil(res)
      assert.is_true(harness.now() - started < 0.5)
      assert.are.equal("rate_limited", err.kind)
      assert.is_true(err.retry_after > 118 and err.retry_after <= 120)
      assert.are.equal(1, #fake.requests(key))
      assert.truthy(tostring(err):find("retry after", 1, true))
      client:close()
    end)

    it("gives up after max_retries with the server's detail and an accurate retry_after", function()
      local client = assert(harness.client { max_retries = 2 })
      local key = unique("storm")
      local _, err = client:get("/fake/flaky/" .. key .. "/", { query = { fail = 10, status = 429, reset_in = 30 } })
      assert.are.equal("rate_limited", err.kind)
      assert.are.equal(429, err.status)
      assert.are.equal(3, err.attempts)
      assert.are.equal(3, #fake.requests(key))
      assert.truthy(err.detail:find("too frequently", 1, true))
      assert.is_number(err.rate_limit.reset)
      assert.is_true(err.retry_after > 25 and err.retry_after <= 30.2, tostring(err.retry_after))
      client:close()
    end)

    it("retries POST on 429: the request was not processed", function()
      local client = assert(harness.client())
      local key = unique("post429")
      local res = assert(client:post("/fake/flaky/" .. key .. "/", { query = { fail = 1, status = 429, retry_after = 0 } }))
      assert.are.equal(2, res.attempts)
      client:close()
    end)
  end)

  describe("server errors and transport failures", function()
    it("retries GET and PUT on 502, 503, 504, 507 and 524", function()
      local client = assert(harness.client())
      for _, status in ipairs { 502, 503, 504, 507, 524 } do
        for _, method in ipairs { "get", "put" } do
          local key = unique("s" .. status)
          local res = assert(client[method](client, "/fake/flaky/" .. key .. "/", { query = { fail = 1, status = status } }))
          assert.are.equal(2, res.attempts)
        end
      end
      client:close()
    end)

    it("does not retry POST or PATCH on 503 unless retry_unsafe is set", function()
      local client = assert(harness.client())
      for _, method in ipairs { "post", "patch" } do
        local key = unique("unsafe")
        local _, err = client[method](client, "/fake/flaky/" .. key .. "/", { query = { fail = 1, status = 503 } })
        assert.are.equal(503, err.status)
        assert.are.equal(1, #fake.requests(key))
      end
      client:close()
      client = assert(harness.client { retry_unsafe = true })
      local key = unique("unsafe-ok")
      assert(client:post("/fake/flaky/" .. key .. "/", { query = { fail = 1, status = 503 } }))
      assert.are.equal(2, #fake.requests(key))
      client:close()
    end)

    it("does not retry 500", function()
      local client = assert(harness.client())
      local key = unique("s500")
      local _, err = client:get("/fake/flaky/" .. key .. "/", { query = { fail = 1, status = 500 } })
      assert.are.equal(500, err.status)
      assert.are.equal(1, err.attempts)
      client:close()
    end)

    it("retries a refused connection for any method (it never reached the server)", function()
      local client = assert(harness.client { base_url = "http://127.0.0.1:1", max_retries = 2 })
      local _, err = client:post("/x/")
      assert.are.equal("network", err.kind)
      assert.are.equal(3, err.attempts)
      client:close()
    end)

    it("retries a timed-out GET but not a timed-out POST", function()
      local client = assert(harness.client { timeout = 0.2, max_retries = 1 })
      local _, err = client:get("/fake/slow/", { query = { ms = 1000 } })
      assert.are.equal("timeout", err.kind)
      assert.are.equal(2, err.attempts)
      _, err = client:post("/fake/slow/", { query = { ms = 1000 } })
      assert.are.equal(1, err.attempts)
      client:close()
    end)
  end)

  describe("proactive waiting", function()
    it("spends no 429 on a burst over the limit", function()
      local client = sleeping_client()
      local key = unique("burst")
      local path = "/fake/limited/" .. key .. "/"
      for _ = 1, 7 do
        assert(client:get(path, { query = { limit = 3, window = 1 } }))
      end
      local statuses = {}
      for _, request in ipairs(fake.requests(key)) do statuses[#statuses + 1] = request.status end
      assert.are.equal(7, #statuses)
      for _, status in ipairs(statuses) do assert.are.equal(200, status) end
      client:close()
    end)

    it("treats garbage rate-limit values as absent, never as an error", function()
      local client = assert(harness.client())
      local res = assert(client:get("/fake/garbage-header/"))
      assert.are.equal(200, res.status)
      assert.is_nil(res.rate_limit)
      assert.is_nil(res.links and res.links.next)
      assert.are.equal("lots", res.headers["x-sentry-rate-limit-limit"])
      -- a header line without a colon is a broken response: a clear network error
      local _, err = client:get("/fake/garbage-header/", { query = { raw = 1 } })
      assert.are.equal("network", err.kind)
      assert.truthy(err.detail:lower():find("header", 1, true))
      client:close()
    end)

    it("omits the fields of missing headers", function()
      local client = assert(harness.client())
      local res = assert(client:get("/fake/flaky/" .. unique("partial") .. "/",
        { query = { fail = 0, remaining = 3 } }))
      assert.is_nil(res.rate_limit)
      res = assert(client:get("/fake/limited/" .. unique("nocc") .. "/", { query = { limit = 5, window = 10 } }))
      assert.are.equal(5, res.rate_limit.limit)
      assert.are.equal(4, res.rate_limit.remaining)
      assert.is_nil(res.rate_limit.concurrent_limit)
      assert.is_nil(res.rate_limit.concurrent_remaining)
      client:close()
    end)

    it("remembers the latest rate-limit state per endpoint", function()
      local client = assert(harness.client())
      assert(client:get("/organizations/acme/projects/"))
      local state = client:rate_limit("GET", "/organizations/{org}/projects/")
      assert.is_number(state.limit)
      assert.is_number(state.remaining)
      assert.is_nil(client:rate_limit("DELETE", "/organizations/{org}/projects/"))
      client:close()
    end)
  end)

  describe("the wait", function()
    it("reports each retry to hooks.on_retry", function()
      local seen = {}
      local client = assert(harness.client { hooks = { on_retry = function(info) seen[#seen + 1] = info end } })
      local key = unique("hook")
      assert(client:get("/fake/flaky/" .. key .. "/", { query = { fail = 2, status = 503 } }))
      assert.are.equal(2, #seen)
      assert.are.equal(1, seen[1].attempt)
      assert.are.equal("server_error", seen[1].reason)
      assert.are.equal(503, seen[1].status)
      assert.is_number(seen[1].wait)
      client:close()
    end)

    it("lets a yielding sleep suspend the request inside a coroutine", function()
      local client = assert(harness.client { sleep = coroutine.yield })
      local key = unique("yield")
      local worker = coroutine.create(function()
        return client:get("/fake/flaky/" .. key .. "/", { query = { fail = 1, status = 429, retry_after = 1 } })
      end)
      local ok, wait = coroutine.resume(worker)
      assert.is_true(ok)
      assert.are.equal("suspended", coroutine.status(worker))
      assert.is_true(wait > 0.5 and wait <= 1)
      assert.are.equal(1, #fake.requests(key))
      local resumed, res = coroutine.resume(worker)
      assert.is_true(resumed)
      assert.are.equal(200, res.status)
      assert.are.equal(2, #fake.requests(key))
      client:close()
    end)

    it("burns no CPU while waiting", function()
      local client = sleeping_client()
      local key = unique("cpu")
      local cpu = os.clock()
      assert(client:get("/fake/flaky/" .. key .. "/", { query = { fail = 1, status = 429, retry_after = 2 } }))
      assert.is_true(os.clock() - cpu < 0.2, "CPU seconds: " .. (os.clock() - cpu))
      client:close()
    end)
  end)
end)
