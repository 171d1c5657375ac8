-- Run by spec/hosts/neovim inside `nvim --headless --clean -u NONE` with the
-- repository on the runtimepath. Prints one TAP line per check ("ok - ..." or
-- "not ok - ..."); quits Neovim with a non-zero status on failure.
local root = assert(os.getenv("SENTRY_PLUGIN_ROOT"), "SENTRY_PLUGIN_ROOT is not set")
local fake_url = assert(os.getenv("SENTRY_FAKE_URL"), "SENTRY_FAKE_URL is not set")
local tokens = dofile(assert(os.getenv("SENTRY_HOST_TOKENS"), "SENTRY_HOST_TOKENS is not set"))

local uv = vim.loop
local passed, failed = 0, 0

local function say(line)
  io.stdout:write(line, "\n")
  io.stdout:flush()
end

-- check(description, fn): fn returns true, or false/nil and what went wrong.
local function check(description, fn)
  local ok, result, detail = xpcall(fn, debug.traceback)
  if ok and result then
    passed = passed + 1
    say("ok - " .. description)
  else
    failed = failed + 1
    say("not ok - " .. description)
    say("#   " .. tostring(ok and detail or result):gsub("\n", "\n#   "))
  end
end

local function seconds_since(start)
  return (uv.hrtime() - start) / 1e9
end

local sentry

check("require 'sentry' finds the module through the runtimepath", function()
  sentry = require "sentry"
  local source = debug.getinfo(sentry.new, "S").source
  return source == "@" .. root .. "/lua/sentry/init.lua", "loaded from " .. source
end)

check("the C core is lua/sentry/core.so from the plugin directory", function()
  local found = vim.api.nvim_get_runtime_file("lua/sentry/core.so", true)
  local core = require "sentry.core"
  return #found == 1 and found[1] == root .. "/lua/sentry/core.so" and type(core) == "table",
    "runtime files: " .. table.concat(found, ", ")
end)

if not sentry then
  say(passed .. " passed, " .. failed .. " failed")
  vim.cmd("cquit 1")
  return
end

local function new_client(overrides)
  local opts = { token = tokens.user_full, base_url = fake_url, org = "acme", config = false,
                 log = function() end }
  for key, value in pairs(overrides or {}) do opts[key] = value end
  return assert(sentry.new(opts))
end

check("a GET returns the decoded body", function()
  local client = new_client()
  local res, err = client:get("/organizations/{org}/projects/", { query = { per_page = 10 } })
  client:close()
  if not res then return false, tostring(err) end
  return res.status == 200 and #res.body == 10 and type(res.body[1].slug) == "string",
    "status " .. res.status .. ", " .. #res.body .. " items"
end)

check("paginate walks every page (250 projects)", function()
  local client = new_client()
  local seen, count = {}, 0
  for project in client:paginate("/organizations/{org}/projects/", { per_page = 100 }) do
    if not seen[project.slug] then count = count + 1 end
    seen[project.slug] = true
  end
  client:close()
  return count == 250, count .. " distinct projects"
end)

check("an error comes back as nil, err", function()
  local client = new_client()
  local res, err = client:get("/organizations/no-such-org/")
  client:close()
  return res == nil and err.kind == "not_found" and err.status == 404, tostring(err)
end)

-- A sleep that yields the coroutine and lets Neovim's loop resume it later:
-- the editor keeps running during a rate-limit wait.
local function editor_sleep(seconds)
  local co = coroutine.running()
  local loop = vim.uv or vim.loop
  loop.update_time() -- the loop's clock stood still while the request blocked
  vim.defer_fn(function() coroutine.resume(co) end, math.ceil(seconds * 1000))
  coroutine.yield()
end

check("a rate-limit wait inside a coroutine leaves the editor's loop running", function()
  local client = new_client { sleep = editor_sleep }
  local key = string.format("nvim-%d-%d", vim.fn.getpid(), uv.hrtime())
  local res, err, done
  local ticks = 0
  local timer = uv.new_timer()
  timer:start(50, 50, function() ticks = ticks + 1 end)

  local started = uv.hrtime()
  local co = coroutine.create(function()
    res, err = client:get("/fake/flaky/" .. key .. "/", { query = { fail = 1, status = 429, retry_after = 1 } })
    done = true
  end)
  assert(coroutine.resume(co))
  local handed_back = seconds_since(started)
  local ticks_at_yield = ticks
  vim.wait(10000, function() return done end, 10)
  local total = seconds_since(started)
  timer:stop()
  timer:close()
  client:close()

  if not res then return false, tostring(err) end
  local ticks_while_waiting = ticks - ticks_at_yield
  return res.status == 200 and res.attempts == 2 and handed_back < 0.5 and total >= 0.9
      and ticks_while_waiting >= 10,
    string.format("status %s after %s attempts; control came back after %.2f s, done after %.2f s, "
      .. "%d timer ticks during the wait", res.status, res.attempts, handed_back, total, ticks_while_waiting)
end)

-- Runs start(callback) on Neovim's loop and waits for the callback, counting
-- the ticks of a 50 ms timer meanwhile. Returns the callback's arguments (as a
-- table), the seconds until start returned, the seconds until the callback
-- and the ticks.
local function on_the_loop(start)
  local ticks, results = 0, nil
  local timer = uv.new_timer()
  timer:start(50, 50, function() ticks = ticks + 1 end)
  local started = uv.hrtime()
  start(function(...) results = { ... } end)
  local returned = seconds_since(started)
  vim.wait(10000, function() return results ~= nil end, 10)
  local total = seconds_since(started)
  timer:stop()
  timer:close()
  return results or {}, returned, total, ticks
end

check("request_async: a response that takes a second leaves the editor's loop running", function()
  local client = new_client()
  local results, returned, total, ticks = on_the_loop(function(done)
    client:request_async("GET", "/fake/slow/", { query = { ms = 1000 } }, done)
  end)
  client:close()
  local res, err = results[1], results[2]
  if not res then return false, tostring(err) end
  return res.status == 200 and returned < 0.2 and total >= 0.9 and ticks >= 10,
    string.format("status %s; returned after %.2f s, called back after %.2f s, %d timer ticks",
      res.status, returned, total, ticks)
end)

check("request_async: a 429 with Retry-After: 1 is retried on the loop", function()
  local client = new_client()
  local key = string.format("nvim-async-%d-%d", vim.fn.getpid(), uv.hrtime())
  local results, returned, total, ticks = on_the_loop(function(done)
    client:request_async("GET", "/fake/flaky/" .. key .. "/",
      { query = { fail = 1, status = 429, retry_after = 1 } }, done)
  end)
  client:close()
  local res, err = results[1], results[2]
  if not res then return false, tostring(err) end
  return res.status == 200 and res.attempts == 2 and returned < 0.2 and total >= 0.9 and ticks >= 10,
    string.format("status %s after %s attempts; returned after %.2f s, called back after %.2f s, %d ticks",
      res.status, res.attempts, returned, total, ticks)
end)

check("batch_async: 10 requests of 300 ms finish together in under 1.5 s; a 10 ms timer ticks 50 times", function()
  local client = new_client()
  local requests = {}
  for i = 1, 10 do requests[i] = { "GET", "/fake/slow/", { query = { ms = 300 } } } end
  local ticks, list = 0, nil
  local timer = uv.new_timer()
  timer:start(10, 10, function() ticks = ticks + 1 end)
  local started = uv.hrtime()
  client:batch_async(requests, { concurrency = 10 }, function(results) list = results end)
  vim.wait(10000, function() return list ~= nil end, 5)
  local total = seconds_since(started)
  timer:stop()
  timer:close()
  client:close()
  if not list then return false, "no callback within 10 s" end
  local ok = 0
  for _, result in ipairs(list) do
    if result.res and result.res.status == 200 then ok = ok + 1 end
  end
  return ok == 10 and total < 1.5 and ticks >= 50,
    string.format("%d of 10 succeeded in %.2f s; %d ticks of the 10 ms timer", ok, total, ticks)
end)

check("collect_async: 250 items over 3 pages of 100 ms; a 10 ms timer ticks throughout", function()
  local client = new_client()
  local ticks, outcome = 0, nil
  local timer = uv.new_timer()
  timer:start(10, 10, function() ticks = ticks + 1 end)
  local started = uv.hrtime()
  client:collect_async("/fake/items/", { query = { total = 250, ms = 100 } }, function(items, err, state)
    outcome = { items = items, err = err, state = state }
  end)
  local returned = seconds_since(started)
  vim.wait(10000, function() return outcome ~= nil end, 5)
  local total = seconds_since(started)
  timer:stop()
  timer:close()
  client:close()
  if not outcome then return false, "no callback within 10 s" end
  if not outcome.items then return false, tostring(outcome.err) end
  return #outcome.items == 250 and outcome.state.pages == 3 and returned < 0.1 and ticks >= 20,
    string.format("%d items in %d pages; returned after %.2f s, done after %.2f s, %d ticks",
      #outcome.items, outcome.state.pages, returned, total, ticks)
end)

check(":checkhealth sentry reports the core, libcurl and the token's source, never the token", function()
  vim.fn.setenv("SENTRY_AUTH_TOKEN", tokens.user_full)
  vim.cmd("checkhealth sentry")
  io.stdout:write("\n") -- Neovim's "Running healthchecks..." has no line end
  local text = table.concat(vim.api.nvim_buf_get_lines(0, 0, -1, false), "\n")
  vim.cmd("bwipeout!")
  vim.fn.setenv("SENTRY_AUTH_TOKEN", vim.NIL)
  local ok = text:find("OK: C core loaded in LuaJIT", 1, true) and text:find("libcurl", 1, true)
    and text:find("from SENTRY_AUTH_TOKEN", 1, true) and not text:find(tokens.user_full:sub(9), 1, true)
  return ok, text
end)

say(passed .. " passed, " .. failed .. " failed")
vim.cmd(failed == 0 and "qall!" or "cquit 1")
