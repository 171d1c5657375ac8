-- client:batch against the fake Sentry: concurrency, order, limits, retries.
local harness = require "harness"
local fake = harness.fake

local function unique(name)
  return name .. "-" .. tostring(math.random(1, 1e9))
end

-- Waits for requests other specs left running on the fake (a timed-out slow
-- request keeps sleeping there), then clears its counters: max_in_flight must
-- count this spec's requests alone.
local function quiet_server()
  local deadline = harness.now() + 5
  while fake.stats().in_flight > 0 and harness.now() < deadline do os.execute("sleep 0.1") end
  fake.reset()
end

local function repeat_request(n, request)
  local list = {}
  for i = 1, n do list[i] = request end
  return list
end

describe("client:batch", function()
  setup(function()
    harness.server()
    math.randomseed(os.time())
  end)

  it("runs 50 requests to a 100 ms endpoint with concurrency 10 in about 0.5 s", function()
    local client = assert(harness.client())
    quiet_server()
    local started = harness.now()
    local results = client:batch(repeat_request(50, { "GET", "/fake/concurrency/", { query = { ms = 100 } } }),
      { concurrency = 10 })
    local elapsed = harness.now() - started
    assert.are.equal(50, #results)
    for _, result in ipairs(results) do
      assert.is_nil(result.err)
      assert.are.equal(200, result.res.status)
    end
    -- one probe request first, then waves of 10: 6 rounds of 100 ms
    assert.is_true(elapsed < 1.0, "took " .. elapsed .. " s")
    assert.is_true(elapsed >= 0.5, "took " .. elapsed .. " s")
    local stats = fake.stats()
    assert.are.equal(10, stats.max_in_flight)
    assert.is_true(stats.connections <= 11, "opened " .. stats.connections .. " connections")
    client:close()
  end)

  it("keeps in flight under the server's ConcurrentLimit", function()
    -- budgets live as long as the process: the first spec taught this token's
    -- budget that the endpoint has no limits; this one announces a limit, so another token
    local client = assert(harness.client { token = harness.tokens.user_read })
    quiet_server()
    local results = client:batch(repeat_request(12,
      { "GET", "/fake/concurrency/", { query = { ms = 100, limit = 3 } } }), { concurrency = 10 })
    for _, result in ipairs(results) do assert.are.equal(200, result.res.status) end
    assert.are.equal(3, fake.stats().max_in_flight)
    client:close()
  end)

  it("returns results in input order, errors in their place", function()
    local client = assert(harness.client { max_retries = 0 })
    local results = client:batch({
      { "GET", "/fake/echo/1/" },
      { method = "GET", path = "/organizations/nope/" },
      { "POST", "/fake/echo/3/", { body = { n = 3 } } },
      { "GET", "/projects/{org}/{project}/" }, -- no project: fails before sending
      { "GET", "/fake/slow/", { query = { ms = 200 } } },
    })
    assert.are.equal("/api/0/fake/echo/1/", results[1].res.body.uri)
    assert.are.equal("not_found", results[2].err.kind)
    assert.are.equal("POST", results[3].res.body.method)
    assert.are.equal("invalid", results[4].err.kind)
    assert.are.equal(200, results[5].res.status)
    client:close()
  end)

  it("delays only the request that was rate limited", function()
    local client = assert(harness.client { sleep = harness.NONE })
    local key = unique("batch429")
    local started = harness.now()
    local results = client:batch({
      { "GET", "/fake/flaky/" .. key .. "/", { query = { fail = 1, status = 429, retry_after = 1 } } },
      { "GET", "/fake/slow/", { query = { ms = 50 } } },
      { "GET", "/fake/echo/x/" },
    }, { concurrency = 3 })
    assert.are.equal(200, results[1].res.status)
    assert.are.equal(2, results[1].res.attempts)
    local requests = fake.requests(key)
    assert.is_true(requests[2].time - requests[1].time >= 1.0)
    -- the others finished long before the retry
    assert.is_true(harness.now() - started >= 1.0)
    assert.are.equal(1, results[2].res.attempts)
    assert.are.equal(1, results[3].res.attempts)
    client:close()
  end)

  it("retries server errors per request, with the blocking path's rules", function()
    local client = assert(harness.client())
    local get_key, post_key = unique("bget"), unique("bpost")
    local results = client:batch({
      { "GET", "/fake/flaky/" .. get_key .. "/", { query = { fail = 1, status = 503 } } },
      { "POST", "/fake/flaky/" .. post_key .. "/", { query = { fail = 1, status = 503 } } },
    })
    assert.are.equal(2, results[1].res.attempts)
    assert.are.equal(503, results[2].err.status)
    assert.are.equal(1, #fake.requests(post_key))
    client:close()
  end)

  it("spends no 429 on a burst over an endpoint's limit", function()
    local client = assert(harness.client { sleep = harness.NONE })
    local key = unique("bburst")
    local results = client:batch(repeat_request(8,
      { "GET", "/fake/limited/" .. key .. "/", { query = { limit = 3, window = 1 } } }), { concurrency = 8 })
    for _, result in ipairs(results) do assert.are.equal(200, result.res.status) end
    for _, request in ipairs(fake.requests(key)) do assert.are.equal(200, request.status) end
    client:close()
  end)

  it("raises on a malformed batch", function()
    local client = assert(harness.client())
    assert.has_error(function() client:batch("GET /") end)
    assert.has_error(function() client:batch({ "GET /" }) end)
    assert.has_error(function() client:batch({}, { concurrency = 0 }) end)
    assert.are.same({}, client:batch({}))
    client:close()
  end)

  it("leaves no growth in RSS, Lua heap or file descriptors over 10k batched requests", function()
    local client = assert(harness.client())
    -- $PPID: the shell's parent is this Lua process
    local function open_fds()
      local count = 0
      local listing = assert(io.popen("ls /proc/$PPID/fd 2>/dev/null"))
      for _ in listing:lines() do count = count + 1 end
      listing:close()
      return count
    end
    local function rss_kib()
      local status = assert(io.popen("grep VmRSS /proc/$PPID/status"))
      local line = status:read("*l") or ""
      status:close()
      return tonumber(line:match("(%d+)"))
    end
    local requests = repeat_request(100, { "GET", "/fake/echo/x/" })
    -- A full collection after each batch keeps the Lua heap's peak (which RSS
    -- keeps) the same throughout, so RSS growth means memory held in C.
    local function run_batches(n)
      for _ = 1, n do
        client:batch(requests, { concurrency = 10 })
        collectgarbage()
      end
    end
    run_batches(20) -- warm: connection pool, engine slots, heap
    local heap, fds, rss = collectgarbage("count"), open_fds(), rss_kib()
    run_batches(100)
    collectgarbage()
    local heap_growth, rss_growth = collectgarbage("count") - heap, rss_kib() - rss
    assert.is_true(heap_growth < 256, "Lua heap grew by " .. heap_growth .. " KiB")
    -- nginx takes each cosocket's memory from the request's pool and frees it
    -- when the request (here: the timer running the specs) ends, so inside
    -- nginx RSS is not the measure; the Lua heap and descriptors still are.
    if harness.transport() == "curl" then
      assert.is_true(rss_growth < 1024, "RSS grew by " .. rss_growth .. " KiB")
    end
    -- a leak would add one per batch (100); the connection cache may vary by a few
    assert.is_true(open_fds() <= fds + 4, "fds " .. fds .. " -> " .. open_fds())
    client:close()
  end)
end)
