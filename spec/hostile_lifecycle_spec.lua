-- Real lifecycles: async clients left to the garbage collector or closed from
-- their own callbacks, batches that raise or nest, and processes that fork.
local harness = require "harness"
local shell = require "shell"
local has_luv, uv = pcall(require, "luv")

local quote = shell.quote
local source_dir = debug.getinfo(1, "S").source:sub(2):match("^(.*)/[^/]*$") or "."
local repo_root = shell.capture("cd " .. quote(source_dir .. "/..") .. " && pwd"):gsub("\n$", "")

-- package.cpath with relative entries made absolute, for a child process.
local function absolute_cpath()
  return (package.cpath:gsub("[^;]+", function(entry)
    return entry:sub(1, 1) == "/" and entry or repo_root .. "/" .. entry:gsub("^%./", "")
  end))
end

-- Runs `body` in a separate interpreter with a client for the fake Sentry in
-- `client` (and `uv`): a crash or an exit from inside the loop takes that
-- process down, not busted. Returns its output and its exit status.
local function run_child(body)
  local script = os.tmpname()
  shell.write_file(script, table.concat({
    "package.path = " .. string.format("%q", repo_root .. "/lua/?.lua;" .. repo_root .. "/lua/?/init.lua;")
      .. " .. package.path",
    "package.cpath = " .. string.format("%q", absolute_cpath()),
    "local uv = require 'luv'",
    "local sentry = require 'sentry'",
    "local logged = {}",
    "local client = sentry.new { token = 'sntryu_' .. string.rep('a', 64), base_url = "
      .. string.format("%q", harness.server().url) .. ", config = false, env = function() end,",
    "  log = function(level, message) logged[#logged + 1] = level .. ': ' .. message end }",
    body,
  }, "\n"))
  -- a loop that never ends is a failure (exit 124), not a suite that hangs
  local output = shell.capture("timeout 60 " .. quote(harness.interpreter()) .. " " .. quote(script) .. " 2>&1; echo \"exit=$?\"")
  os.remove(script)
  local status = tonumber(output:match("exit=(%d+)%s*$"))
  return output:gsub("exit=%d+%s*$", ""), status
end

local describe_luv = has_luv and describe or pending

describe_luv("async clients in a real process lifecycle", function()
  setup(function() harness.server() end)

  it("a client used with request_async and left to the garbage collector exits cleanly", function()
    local output, status = run_child [[
      local got
      client:request_async("GET", "/fake/echo/gc-at-exit/", nil, function(res) got = res and res.status end)
      uv.run()
      print("status " .. tostring(got))
      client = nil
      collectgarbage()
    ]]
    assert.are.equal(0, status, output)
    assert.matches("status 200", output)
  end)

  it("client:close() inside an async callback ends the loop, not the process", function()
    local output, status = run_child [[
      local calls = 0
      for i = 1, 3 do
        client:request_async("GET", "/fake/echo/close-" .. i .. "/", nil, function(res)
          calls = calls + 1
          client:close()
        end)
      end
      uv.run()
      print("after the loop: " .. calls .. " callback(s), " .. tostring(client))
    ]]
    assert.are.equal(0, status, output)
    assert.matches("after the loop: 1 callback%(s%), sentry%.client%(.*closed%)", output)
  end)

  it("an error raised in a callback goes to the client's log; other requests go on", function()
    local output, status = run_child [[
      local second
      client:request_async("GET", "/fake/echo/raise/", nil, function() error("my callback broke") end)
      client:request_async("GET", "/fake/slow/", { query = { ms = 100 } }, function(res) second = res.status end)
      uv.run()
      print("second " .. tostring(second))
      print("log " .. table.concat(logged, " | "))
    ]]
    assert.are.equal(0, status, output)
    assert.matches("second 200", output)
    assert.matches("log error: .*my callback broke", output)
  end)

  it("a hook that raises on an async request reaches that request's callback as an error", function()
    local output, status = run_child [[
      client = sentry.new { token = 'sntryu_' .. string.rep('a', 64), base_url = client.base_url, config = false,
        env = function() end, log = function(level, message) logged[#logged + 1] = level .. ': ' .. message end,
        hooks = { on_response = function(info)
          if info.url:find("hook-raises", 1, true) then error("hook refused") end
        end } }
      local first, second
      client:request_async("GET", "/fake/echo/hook-raises/", nil, function(res, err) first = { res, err } end)
      client:request_async("GET", "/fake/echo/fine/", nil, function(res, err) second = { res, err } end)
      uv.run()
      print("first " .. tostring(first[1]) .. " " .. tostring(first[2]))
      print("second " .. tostring(second[1] and second[1].status))
    ]]
    assert.are.equal(0, status, output)
    assert.matches("first nil sentry: lua_error: .*hook refused", output)
    assert.matches("second 200", output)
  end)

  it("an async client dropped while idle is collected: its connections close", function()
    local output, status = run_child [[
      local function descriptors()
        local count = 0
        for _ in io.popen("ls /proc/" .. require("sentry.core").getpid() .. "/fd"):lines() do count = count + 1 end
        return count
      end
      local function use_and_drop()
        local c = sentry.new { token = 'sntryu_' .. string.rep('b', 64), base_url = client.base_url,
          config = false, env = function() end }
        local done = false
        c:request_async("GET", "/fake/echo/dropped/", nil, function() done = true end)
        while not done do uv.run("once") end
      end
      use_and_drop() -- the loop's own descriptors exist from here on
      collectgarbage(); collectgarbage()
      uv.run("nowait")
      local before = descriptors()
      for _ = 1, 5 do use_and_drop() end
      collectgarbage(); collectgarbage()
      uv.run("nowait")
      print("descriptors " .. before .. " -> " .. descriptors())
    ]]
    assert.are.equal(0, status, output)
    local before, after = output:match("descriptors (%d+) %-> (%d+)")
    assert(before, output)
    assert.is_true(tonumber(after) <= tonumber(before), output)
  end)

  it("hostile responses on async requests reach their callbacks", function()
    local output, status = run_child [[
      local seen = {}
      for _, path in ipairs { "/fake/reset/", "/fake/garbage-header/", "/fake/truncated/", "/fake/overlong/" } do
        client:request_async("GET", path, nil, function(res, err)
          seen[#seen + 1] = path .. "=" .. (res and tostring(res.status) or tostring(err and err.kind))
        end)
      end
      uv.run()
      table.sort(seen)
      print("seen " .. #seen .. " " .. table.concat(seen, " "))
    ]]
    assert.are.equal(0, status, output)
    assert.matches("seen 4 ", output)
  end)
end)

describe("batches return their own results", function()
  setup(function() harness.server() end)

  it("a batch that raised leaves nothing in flight for the next batch", function()
    local client = assert(harness.client { hooks = { on_response = function(info)
      if info.url:find("refused", 1, true) then error("on_response refused this one") end
    end } })
    local ok, problem = pcall(client.batch, client, {
      { "GET", "/fake/slow/", { query = { ms = 200 } } },
      { "GET", "/fake/echo/refused/" },
    })
    assert.is_false(ok)
    assert.matches("on_response refused this one", tostring(problem))
    os.execute("sleep 0.3") -- the slow request's answer is now waiting in its socket
    local results = client:batch({ { "GET", "/fake/echo/three/" }, { "GET", "/fake/echo/four/" } })
    assert.are.equal("/api/0/fake/echo/three/", results[1].res.body.path)
    assert.are.equal("/api/0/fake/echo/four/", results[2].res.body.path)
    client:close()
  end)

  it("a batch run from an on_response hook keeps its results apart from the outer batch", function()
    local client, inner
    client = assert(harness.client { hooks = { on_response = function(info)
      if inner == nil and info.url:find("outer-2", 1, true) then
        inner = false
        inner = client:batch({ { "GET", "/fake/slow/", { query = { ms = 300 } } }, { "GET", "/fake/echo/inner-2/" } })
      end
    end } })
    local outer = client:batch({ { "GET", "/fake/slow/", { query = { ms = 150 } } }, { "GET", "/fake/echo/outer-2/" } })
    assert.are.equal(150, outer[1].res.body.slept_ms)
    assert.are.equal("/api/0/fake/echo/outer-2/", outer[2].res.body.path)
    assert.are.equal(300, inner[1].res.body.slept_ms)
    assert.are.equal("/api/0/fake/echo/inner-2/", inner[2].res.body.path)
    client:close()
  end)

  local it_luv = has_luv and it or pending
  it_luv("a batch_async's concurrency limits that batch, not the driver's other requests", function()
    local client = assert(harness.client())
    client:async { loop = uv, concurrency = 10 }
    local warmed = false -- the endpoint is probed once before requests to it run together
    client:request_async("GET", "/fake/slow/", nil, function() warmed = true end)
    while not warmed do uv.run("once") end
    local started = harness.now()
    local singles, batch_done, singles_done = 0, nil, nil
    client:batch_async({ { "GET", "/fake/slow/", { query = { ms = 300 } } },
      { "GET", "/fake/slow/", { query = { ms = 300 } } } }, { concurrency = 1 }, function(results)
      assert.are.equal(200, results[2].res.status)
      batch_done = harness.now() - started
    end)
    for _ = 1, 4 do
      client:request_async("GET", "/fake/slow/", { query = { ms = 300 } }, function(res)
        assert.are.equal(200, res.status)
        singles = singles + 1
        if singles == 4 then singles_done = harness.now() - started end
      end)
    end
    local deadline = harness.now() + 5
    while not (batch_done and singles_done) and harness.now() < deadline do uv.run("once") end
    assert.is_true(singles_done < 0.9, "the single requests took " .. tostring(singles_done) .. " s")
    assert.is_true(batch_done >= 0.55, "the batch ran both at once: " .. tostring(batch_done) .. " s")
    client:close()
    uv.run("nowait")
  end)
end)

-- A tiny C module for these specs alone: fork, wait and _exit. Compiled here,
-- for the interpreter running the specs.
local function fork_helper()
  local lua = jit and "luajit" or ("lua" .. _VERSION:match("%d+%.%d+"))
  local dir = os.tmpname()
  os.remove(dir)
  assert(shell.run("mkdir " .. quote(dir)))
  -- without a sanitizer runtime preloaded (make asan): the compiler's leaks are not ours
  local built = shell.run("unset LD_PRELOAD; cc -std=c99 -shared -fPIC -o " .. quote(dir .. "/fork_helper.so") .. " "
    .. quote(repo_root .. "/spec/support/fork_helper.c") .. " $(pkg-config --cflags " .. lua .. ") 2>&1")
  assert(built, "the fork helper did not compile (a C compiler and the Lua headers are needed)")
  local loader = assert(package.loadlib(dir .. "/fork_helper.so", "luaopen_fork_helper"))
  return loader()
end

describe("a client after fork", function()
  local helper, core
  setup(function()
    harness.server()
    core = require "sentry.core"
    helper = fork_helper()
  end)

  -- Runs `work(role)` in the parent and in a forked child at once, both
  -- through one client; returns each side's result (the child's as a string).
  local function in_both(work)
    local report = os.tmpname()
    local pid = helper.fork()
    if pid == 0 then
      local ok, result = pcall(work, "child")
      local file = io.open(report, "w")
      if file then
        file:write(ok and tostring(result) or ("error: " .. tostring(result)))
        file:close()
      end
      helper.exit_now(0) -- never back into busted
    end
    local parent = work("parent")
    assert.are.equal(0, helper.wait(pid))
    local child = shell.read_file(report)
    os.remove(report)
    return parent, child
  end

  it("core.getpid() tells the child from the parent", function()
    local parent, child = in_both(function() return core.getpid() end)
    assert.are.equal(helper.getpid(), parent)
    assert.are_not.equal(tostring(parent), child)
  end)

  it("parent and child each get their own responses over their own connections", function()
    local client = assert(harness.client())
    assert(client:get("/fake/echo/warm/")) -- a kept-alive connection, inherited by the child
    local function twenty(role)
      local wrong = 0
      for i = 1, 20 do
        local path = "/fake/echo/" .. role .. "-" .. i .. "/"
        local res = client:get(path)
        if not (res and res.body.path == "/api/0" .. path) then wrong = wrong + 1 end
      end
      return wrong
    end
    local parent, child = in_both(twenty)
    assert.are.equal(0, parent, parent .. " of 20 wrong in the parent")
    assert.are.equal("0", child, child .. " of 20 wrong in the child")
    client:close()
  end)

  it("batches in parent and child each get their own responses", function()
    local client = assert(harness.client())
    assert(client:batch({ { "GET", "/fake/echo/warm-1/" }, { "GET", "/fake/echo/warm-2/" } }))
    local function batches(role)
      local wrong = 0
      for round = 1, 5 do
        local requests = {}
        for i = 1, 4 do requests[i] = { "GET", "/fake/echo/" .. role .. "-" .. round .. "-" .. i .. "/" } end
        for i, result in ipairs(client:batch(requests)) do
          local expected = "/api/0/fake/echo/" .. role .. "-" .. round .. "-" .. i .. "/"
          if not (result.res and result.res.body.path == expected) then wrong = wrong + 1 end
        end
      end
      return wrong
    end
    local parent, child = in_both(batches)
    assert.are.equal(0, parent, parent .. " of 20 wrong in the parent")
    assert.are.equal("0", child, child .. " of 20 wrong in the child")
    client:close()
  end)

  it("a child that closes the client leaves the parent's kept-alive TLS connection alone", function()
    local server = harness.server()
    assert(server.https_url, "the fake Sentry has no TLS listener: is openssl installed?")
    local client = assert(harness.client { base_url = server.https_url, ca_file = server.cert_file })
    local key = "fork-tls-" .. tostring(math.random(1, 1e9))
    local path = "/fake/flaky/" .. key .. "/"
    assert(client:get(path, { query = { fail = 0 } }))
    local pid = helper.fork()
    if pid == 0 then
      client:close() -- libcurl's cleanup would send close_notify on the parent's socket
      helper.exit_now(0)
    end
    assert.are.equal(0, helper.wait(pid))
    assert(client:get(path, { query = { fail = 0 } }))
    local seen = harness.fake.requests(key)
    assert.are.equal(2, #seen)
    assert.are.equal(seen[1].connection, seen[2].connection, "the parent had to reconnect")
    client:close()
  end)

  it("a fork in the middle of a batch: the child retries what was in flight on its own connection", function()
    local pid
    local client = assert(harness.client { hooks = { on_response = function(info)
      if pid == nil and info.url:find("before-fork", 1, true) then pid = helper.fork() end
    end } })
    local report = os.tmpname()
    local results = client:batch({
      { "GET", "/fake/echo/before-fork/" },
      { "GET", "/fake/slow/", { query = { ms = 300 }, timeout = 3 } },
    })
    local slow = results[2].res
    local summary = (slow and string.format("%d", slow.body.slept_ms) or tostring(results[2].err))
      .. " after " .. tostring(slow and slow.attempts) .. " attempt(s)"
    if pid == 0 then
      shell.write_file(report, summary)
      helper.exit_now(0)
    end
    assert.are.equal(0, helper.wait(pid))
    local child = shell.read_file(report)
    os.remove(report)
    assert.are.equal("300 after 1 attempt(s)", summary)
    assert.are.equal("300 after 2 attempt(s)", child)
    client:close()
  end)
end)

describe("the core's engine in one mode", function()
  local core, client
  setup(function()
    harness.server()
    core = require "sentry.core"
    client = assert(harness.client())
  end)
  teardown(function() client:close() end)

  it("refuses the other mode's calls with an error that names both modes", function()
    local socket_engine = core.new_engine(client._transport:curl(), "socket")
    for _, call in ipairs { "perform", "wait" } do
      assert.has_error(function() socket_engine[call](socket_engine, 0) end,
        "engine:" .. call .. " is for a \"poll\" engine; this one was made in \"socket\" mode")
    end
    local poll_engine = core.new_engine(client._transport:curl(), "poll")
    for _, call in ipairs { "socket_action", "sockets", "timeout" } do
      assert.has_error(function() poll_engine[call](poll_engine) end,
        "engine:" .. call .. " is for a \"socket\" engine; this one was made in \"poll\" mode")
    end
    assert.equal(0, poll_engine:perform())
    poll_engine:close()
    assert.has_error(function() poll_engine:perform() end, "attempt to use a closed engine")
    assert.matches("sentry.core.engine (closed)", tostring(poll_engine), 1, true)
    socket_engine:close()
  end)
end)
