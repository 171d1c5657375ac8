-- Where budgets live: the `budget` option, a Redis store shared by processes
-- (a real redis-server on loopback), and what happens when it goes away.
local harness = require "harness"
local shell = require "shell"
local fake = harness.fake
local core = require "sentry.core"

local LIMIT = 10
local QUERY = { limit = LIMIT, window = 1 }

local function unique(name)
  return name .. "-" .. tostring(math.random(1, 1e9))
end

local function has_redis()
  return shell.run("command -v redis-server >/dev/null 2>&1 && command -v redis-cli >/dev/null 2>&1")
end

-- A port to listen on, below Linux's ephemeral range (32768 on): a client's
-- outgoing connection never holds it.
local function random_port()
  return math.random(20000, 32000)
end

-- A redis-server of our own on a free port; stop() ends it.
local function start_redis(port, dir)
  assert(shell.run("mkdir -p " .. shell.quote(dir)))
  assert(shell.run("redis-server --port " .. port .. " --bind 127.0.0.1 --save '' --appendonly no --daemonize yes"
    .. " --dir " .. shell.quote(dir) .. " --pidfile " .. shell.quote(dir .. "/redis.pid")
    .. " --logfile " .. shell.quote(dir .. "/redis.log") .. " >/dev/null 2>&1"))
  for _ = 1, 50 do
    if shell.run("redis-cli -p " .. port .. " ping >/dev/null 2>&1") then return true end
    core.sleep(0.1)
  end
  return false, "redis-server did not start on port " .. port
end

local function stop_redis(port)
  shell.run("redis-cli -p " .. port .. " shutdown nosave >/dev/null 2>&1")
  for _ = 1, 50 do
    if not shell.run("redis-cli -p " .. port .. " ping >/dev/null 2>&1") then return end
    core.sleep(0.1)
  end
end

local function count_429(key)
  local n = 0
  for _, request in ipairs(fake.requests(key)) do
    if request.status == 429 then n = n + 1 end
  end
  return n
end

describe("the budget option", function()
  setup(function() harness.server() end)

  it("refuses a budget it cannot use, saying what to write", function()
    local cases = {
      { { shared_dict = "sentry", redis = { host = "h" } }, "one store" },
      { {}, "one store" },
      { { sharde_dict = "x" }, "unknown field 'sharde_dict'" },
      { { redis = { host = "127.0.0.1", port = "6379" } }, "budget.redis.port must be a number" },
      { { redis = { port = 6379 } }, "needs a host" },
      { { redis = { host = "127.0.0.1", timeout = 0 } }, "timeout must be greater than 0" },
    }
    for _, case in ipairs(cases) do
      local client, err = harness.client { budget = case[1] }
      assert.is_nil(client)
      assert.are.equal("invalid", err.kind)
      assert.matches(case[2], err.detail, 1, true)
    end
  end)

  it("names the missing lua_shared_dict (outside OpenResty there is none)", function()
    if rawget(_G, "ngx") then return end
    local client, err = harness.client { budget = { shared_dict = "sentry" } }
    assert.is_nil(client)
    assert.matches("lua_shared_dict", err.detail)
  end)
end)

describe("a budget in Redis", function()
  local port, dir
  setup(function()
    harness.server()
    math.randomseed(os.time() + math.floor(core.now() * 1000) % 100000)
    if not has_redis() then return end
    dir = os.tmpname() .. "-redis"
    os.remove(dir:gsub("%-redis$", ""))
    local started, problem
    for _ = 1, 5 do -- another port when one is taken
      port = random_port()
      started, problem = start_redis(port, dir)
      if started then break end
    end
    assert(started, problem)
  end)
  teardown(function()
    if port then stop_redis(port) end
    if dir then shell.run("rm -rf " .. shell.quote(dir)) end
  end)

  local function redis_client(log)
    return assert(harness.client { sleep = core.sleep, log = log,
      budget = { redis = { host = "127.0.0.1", port = port } } })
  end

  local function burst(client, key, n)
    local requests = {}
    for i = 1, n do requests[i] = { "GET", "/fake/limited/" .. key .. "/", { query = QUERY } } end
    return client:batch(requests, { concurrency = n })
  end

  it("shares one budget between processes, keyed by the token's digest", function()
    if not port then pending("redis-server is not installed (make deps)") return end
    local key = unique("redis")
    -- a second process, with its own memory, on the same budget
    local other = io.popen(string.format("%s -e %s 2>&1", shell.quote(harness.interpreter()),
      shell.quote(string.format([[
        package.path = %q; package.cpath = %q
        local core = require "sentry.core"
        local client = assert(require("sentry").new { token = %q, base_url = %q, config = false,
          sleep = core.sleep, budget = { redis = { host = "127.0.0.1", port = %d } } })
        local requests = {}
        for i = 1, 25 do requests[i] = { "GET", "/fake/limited/%s/", { query = { limit = 10, window = 1 } } } end
        for _, result in ipairs(client:batch(requests, { concurrency = 25 })) do
          io.write(result.res and "ok " or tostring(result.err) .. " ")
        end]], package.path, package.cpath, harness.tokens.user_full, harness.server().url, port, key))))
    local results = burst(redis_client(), key, 25)
    local printed = other:read("*a")
    other:close()
    for _, result in ipairs(results) do assert.are.equal(200, result.res and result.res.status) end
    assert.are.equal(25, select(2, printed:gsub("ok ", "")), printed)
    assert.is_true(count_429(key) <= 3, count_429(key) .. " responses 429")
    local keys = shell.capture("redis-cli -p " .. port .. " --scan --pattern '*'")
    assert.matches("sentry:%x+:GET /api/0/fake/limited/", keys)
    assert.is_nil(keys:find(harness.tokens.user_full:sub(8, 40), 1, true))
  end)

  it("admits locally while Redis is down, warns once, and shares again when it is back", function()
    if not port then pending("redis-server is not installed (make deps)") return end
    local logged = {}
    local function log(level, message) logged[#logged + 1] = level .. ": " .. message end
    local client = redis_client(log)
    local key = unique("outage")
    assert(client:get("/fake/limited/" .. key .. "/", { query = QUERY }))
    stop_redis(port)
    local results = burst(client, key, 15)
    for _, result in ipairs(results) do assert.are.equal(200, result.res and result.res.status) end
    local warnings = {}
    for _, line in ipairs(logged) do
      if line:match("^warn:") then warnings[#warnings + 1] = line end
    end
    assert.are.equal(1, #warnings, table.concat(logged, "\n"))
    assert.matches("rate%-limit store %(redis 127%.0%.0%.1:%d+%) failed", warnings[1])
    assert.is_nil(warnings[1]:find(harness.tokens.user_full, 1, true))
    assert(start_redis(port, dir))
    core.sleep(1.1) -- the governor tries the store again after a second
    assert(client:get("/fake/limited/" .. key .. "/", { query = QUERY }))
    assert.matches("answers again", logged[#logged])
    local keys = shell.capture("redis-cli -p " .. port .. " --scan --pattern 'sentry:*'")
    assert.matches(key, keys, 1, true)
    client:close()
  end)

  it("keeps one connection for every token, and a client's wrong password to itself", function()
    if not port then pending("redis-server is not installed (make deps)") return end
    local wrong = assert(harness.client { sleep = core.sleep, log = function() end,
      budget = { redis = { host = "127.0.0.1", port = port, password = "not-the-password" } } })
    assert(wrong:get("/fake/limited/" .. unique("password") .. "/", { query = QUERY }))
    local logged = {}
    for i = 1, 50 do
      local token = "sntryu_" .. string.format("%064x", i)
      local client = assert(harness.client { token = token, sleep = core.sleep,
        log = function(level, message) logged[#logged + 1] = level .. ": " .. message end,
        budget = { redis = { host = "127.0.0.1", port = port } } })
      local res, err = client:get("/fake/limited/" .. unique("tokens") .. "/", { query = QUERY })
      assert.is_true(res ~= nil or err.kind == "unauthorized", tostring(err))
      client:close()
    end
    assert.are.same({}, logged) -- the other password's failure is not theirs
    local connections = select(2, shell.capture("redis-cli -p " .. port .. " client list"):gsub("\n", ""))
    assert.is_true(connections <= 3, connections .. " connections") -- ours, redis-cli's, an earlier spec's
    local keys = shell.capture("redis-cli -p " .. port .. " --scan --pattern 'sentry:*tokens*'")
    assert.is_true(select(2, keys:gsub("\n", "")) >= 50)
    wrong:close()
  end)
end)

describe("a Redis that does not answer like Redis", function()
  local server_port, pid
  setup(function() harness.server() end)
  after_each(function()
    if pid then shell.run("kill " .. pid .. " 2>/dev/null") end
    pid = nil
  end)

  -- Starts the server on a free port (another port when one is taken); slow
  -- interpreters (under the sanitizers) get 20 s to listen.
  local function start(mode)
    if not pcall(require, "socket") then return false end
    for _ = 1, 5 do
      server_port = random_port()
      pid = shell.capture(string.format("%s spec/support/hostile_redis.lua %s %d >/dev/null 2>&1 & echo $!",
        shell.quote(harness.interpreter()), mode, server_port)):match("%d+")
      for _ = 1, 200 do
        local probe = require("socket").tcp()
        probe:settimeout(0.1)
        local connected = probe:connect("127.0.0.1", server_port)
        probe:close()
        if connected then return true end
        if not shell.run("kill -0 " .. pid .. " 2>/dev/null") then break end -- it could not listen there
        core.sleep(0.1)
      end
      shell.run("kill " .. pid .. " 2>/dev/null")
    end
    error("the hostile server did not start")
  end

  -- Every request still goes, soon, through this process's own budget, and
  -- the log says once what was wrong.
  local cases = {
    { "ok", "SCRIPT LOAD was not answered with a script's SHA-1" },
    { "spin", "unexpected reply from Redis to admit" },
    { "drip", "timeout" },
    { "huge", "a reply longer than 65536 bytes" },
  }
  for _, case in ipairs(cases) do
    local mode, problem = case[1], case[2]
    it("'" .. mode .. "': admits locally at once and warns once: " .. problem, function()
      if not start(mode) then pending("LuaSocket is not installed (make deps)") return end
      local logged = {}
      local client = assert(harness.client { sleep = core.sleep, token = harness.tokens.user_read,
        log = function(level, message) logged[#logged + 1] = level .. ": " .. message end,
        budget = { redis = { host = "127.0.0.1", port = server_port, timeout = 0.3 } } })
      local key = unique(mode)
      local started = core.now()
      for _ = 1, 3 do assert(client:get("/fake/limited/" .. key .. "/", { query = QUERY })) end
      local elapsed = core.now() - started
      assert.is_true(elapsed < 2, string.format("took %.2f s", elapsed))
      assert.are.equal(1, #logged, table.concat(logged, "\n"))
      assert.matches(problem, logged[1], 1, true)
      client:close()
    end)
  end
end)
