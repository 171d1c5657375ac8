-- Servers that misbehave on purpose: byte-at-a-time responses, bodies that
-- never end, interim (1xx) responses, timeouts below a millisecond. Every
-- case ends within `timeout` + 1 s. The same file runs
-- inside nginx (spec/hosts/openresty-specs), where requests go over cosockets.
local harness = require "harness"
local socket = require "socket"

local timed = harness.timed

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
end)
