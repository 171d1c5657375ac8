-- Servers that misbehave on purpose: byte-at-a-time responses, bodies that
-- never end, interim (1xx) responses, timeouts below a millisecond, and retry
-- waits that add up. Every case ends within `timeout` + 1 s. The same file runs
-- inside nginx (spec/hosts/openresty-specs), where requests go over cosockets.
local harness = require "harness"
local socket = require "socket"

local function unique(name)
  return name .. "-" .. tostring(math.random(1, 1e9))
end

local recording_client, timed = harness.recording_client, harness.timed

local function sum(list)
  local total = 0
  for _, value in ipairs(list) do total = total + value end
  return total
end

-- A listening port that never answers a connection attempt: its accept queue
-- is full, so the kernel drops further SYNs and connect() hangs.
local function black_hole()
  local server = assert(socket.bind("127.0.0.1", 0, 1))
  local _, port = server:getsockname()
  local fillers = {}
  for _ = 1, 16 do
    local filler = socket.tcp()
    filler:settimeout(0.2)
    fillers[#fillers + 1] = filler
    if not filler:connect("127.0.0.1", port) then break end
  end
  return "http://127.0.0.1:" .. port, function()
    for _, filler in ipairs(fillers) do filler:close() end
    server:close()
  end
end

describe("hostile servers (" .. harness.transport() .. ")", function()
  setup(function()
    harness.server()
    math.randomseed(os.time())
  end)

  describe("timeout is a total deadline", function()
    -- A GET that must fail within `within` seconds; returns its err.
    local function failing_get(options, path, query, within)
      local client = assert(harness.client(options))
      local res, err, took = timed(function() return client:get(path, { query = query }) end)
      client:close()
      assert.is_nil(res, "a response arrived")
      assert.is_true(took < within, "took " .. took)
      return err
    end

    for _, where in ipairs { "body", "headers" } do
      it("a response whose " .. where .. " comes one byte every 200 ms stops at the timeout", function()
        local err = failing_get({ timeout = 1, max_retries = 0 }, "/fake/drip/", { where = where, bytes = 50 }, 2)
        assert.are.equal("timeout", err.kind)
      end)
    end

    it("a body without a length that never ends stops at max_body_bytes, not later", function()
      local err = failing_get({ timeout = 3, max_retries = 0, max_body_bytes = 100000 }, "/fake/endless/", nil, 1)
      assert.are.equal("too_large", err.code)
      assert.matches("max_body_bytes (100000 bytes)", err.detail, 1, true)
    end)

    it("a timeout under a millisecond is a timeout, not none", function()
      local err = failing_get({ timeout = 0.0004, max_retries = 0 }, "/fake/slow/", { ms = 3000 }, 1)
      assert.are.equal("timeout", err.kind)
    end)

    for _, case in ipairs {
      { connect_timeout = 0.0004, within = 1, what = "a connect_timeout under a millisecond bounds the connection, "
        .. "not a 300 s default" },
      { connect_timeout = 0.5, within = 1.5, what = "connect_timeout holds on a server that never accepts" },
    } do
      it(case.what, function()
        local url, close = black_hole()
        finally(close)
        local err = failing_get({ base_url = url, timeout = 3, connect_timeout = case.connect_timeout, max_retries = 0 },
          "/fake/echo/", nil, case.within)
        assert.are.equal("timeout", err.kind)
      end)
    end
  end)

  describe("interim (1xx) responses", function()
    for _, case in ipairs {
      { status = 103, count = 1, what = "a 103 Early Hints" },
      { status = 100, count = 1, what = "a 100 Continue" },
      { status = 103, count = 3, what = "three 103s" },
    } do
      it(case.what .. " before the 200 is skipped; the next request gets its own response", function()
        local client = assert(harness.client { timeout = 3, max_retries = 0 })
        local res, err, took = timed(function()
          return client:get("/fake/interim/", { query = { status = case.status, count = case.count } })
        end)
        assert.is_nil(err)
        assert.are.equal(200, res.status)
        assert.are.same({ ok = true, final = 1 }, res.body)
        assert.is_true(took < 4, "took " .. took)
        res = assert(client:get("/fake/echo/after-interim/"))
        assert.are.equal("/api/0/fake/echo/after-interim/", res.body.path)
        client:close()
      end)
    end

    it("a kept-alive connection the server closes instead of answering: the request goes on a new one", function()
      local client = assert(harness.client { timeout = 3, max_retries = 0 })
      assert.are.same({ ok = true }, assert(client:get("/fake/hangup-next/")).body)
      local res, err = client:post("/fake/echo/after-hangup/", { body = { n = 1 } })
      client:close()
      assert.is_nil(err)
      assert.are.equal('{"n":1}', res.body.body)
    end)

    it("bytes beyond a Content-Length are never read as the next response", function()
      local client = assert(harness.client { timeout = 3, max_retries = 0 })
      local res = assert(client:get("/fake/overlong/"))
      assert.are.same({ ok = true }, res.body)
      res = assert(client:get("/fake/echo/after-overlong/"))
      assert.are.equal("/api/0/fake/echo/after-overlong/", res.body.path)
      client:close()
    end)
  end)

  describe("max_total_wait bounds all the waits of one call", function()
    it("429s with Retry-After: 2 under max_retry_wait = 3 stop before the waits pass 5 s", function()
      local client, waits = recording_client { max_retries = 10, max_retry_wait = 3, max_total_wait = 5 }
      local _, err = client:get("/fake/flaky/" .. unique("total") .. "/",
        { query = { fail = 1000, status = 429, retry_after = 2 } })
      client:close()
      assert.are.equal(2, #waits)
      assert.is_true(sum(waits) > 3.5 and sum(waits) <= 4, "waited " .. sum(waits))
      assert.are.equal("rate_limited", err.kind)
      assert.are.equal(3, err.attempts)
      assert.is_true(err.retry_after > 1.5 and err.retry_after <= 2, tostring(err.retry_after))
      assert.matches("max_total_wait", err.detail, 1, true)
    end)

    it("pauses for a used-up rate-limit window count too", function()
      local client, waits = recording_client { max_retries = 10, max_retry_wait = 3, max_total_wait = 5 }
      local _, err = client:get("/fake/flaky/" .. unique("window") .. "/",
        { query = { fail = 1000, status = 429, reset_in = 2, remaining = 0 } })
      client:close()
      assert.is_true(#waits >= 2, #waits .. " waits")
      assert.is_true(sum(waits) <= 5, "waited " .. sum(waits))
      assert.are.equal("rate_limited", err.kind)
      assert.matches("max_total_wait", err.detail, 1, true)
    end)

    it("defaults to 120 s", function()
      local client, waits = recording_client { max_retries = 1000 }
      local _, err = client:get("/fake/flaky/" .. unique("default") .. "/",
        { query = { fail = 1000, status = 429, retry_after = 50 } })
      client:close()
      assert.are.equal(2, #waits)
      assert.is_true(sum(waits) > 99 and sum(waits) <= 100, "waited " .. sum(waits))
      assert.are.equal(3, err.attempts)
    end)

    it("bounds the backoff of a failing server too", function()
      local client, waits = recording_client { max_retries = 1000, backoff_base = 1, backoff_factor = 1,
        max_total_wait = 10 }
      local _, err = client:get("/fake/status/503/")
      client:close()
      assert.is_true(sum(waits) <= 10, "waited " .. sum(waits))
      assert.are.equal(503, err.status)
      assert.matches("max_total_wait", err.detail, 1, true)
    end)

    it("bounds the waits in a batch", function()
      local client = assert(harness.client { max_retries = 10, max_total_wait = 0.5, sleep = harness.NONE })
      local results, _, took = timed(function()
        return client:batch { { "GET", "/fake/flaky/" .. unique("batch") .. "/",
          { query = { fail = 1000, status = 429, retry_after = 0.2 } } } }
      end)
      client:close()
      assert.are.equal("rate_limited", results[1].err.kind)
      assert.are.equal(3, results[1].err.attempts)
      assert.is_true(took < 1.5, "took " .. took)
    end)

    it("0 means no retry waits at all; a negative or non-number value is refused", function()
      local client, waits = recording_client { max_retries = 3, max_total_wait = 0 }
      local _, err = client:get("/fake/flaky/" .. unique("zero") .. "/", { query = { fail = 1000, status = 429,
        retry_after = 1 } })
      client:close()
      assert.are.same({}, waits)
      assert.are.equal(1, err.attempts)
      local refused, why = harness.client { max_total_wait = -1 }
      assert.is_nil(refused)
      assert.are.equal("invalid", why.kind)
      assert.matches("max_total_wait must be 0 or more", why.detail, 1, true)
      assert.has_error(function() harness.client { max_total_wait = "60" } end,
        "option 'max_total_wait' must be a number, got string")
    end)
  end)
end)
