-- Soak test: many requests in one process against the fake Sentry, with the
-- process's resident memory, open file descriptors and Lua heap measured at a
-- checkpoint and at the end. Run by bench/soak (make soak); see there.
--
-- Environment: SOAK_REQUESTS (default 100000), SOAK_CHECKPOINT (default 10000),
-- SOAK_RSS_KIB (allowed RSS growth from the checkpoint to the end, default 1024),
-- SOAK_HEAP_KIB (allowed Lua heap growth, default 256).
-- Prints "ok - ..." / "FAILED - ..." lines and ends with "N passed, N failed".
package.path = "lua/?.lua;lua/?/init.lua;spec/support/?.lua;" .. package.path

local harness = require "harness"
local core = require "sentry.core"

local function number_env(name, default)
  return tonumber(os.getenv(name) or "") or default
end

local total = number_env("SOAK_REQUESTS", 100000)
local checkpoint = number_env("SOAK_CHECKPOINT", math.min(10000, math.floor(total / 10)))
local rss_limit = number_env("SOAK_RSS_KIB", 1024)
local heap_limit = number_env("SOAK_HEAP_KIB", 256)

local passed, failed = 0, 0
local function check(ok, description, detail)
  if ok then
    passed = passed + 1
    print("ok - " .. description)
  else
    failed = failed + 1
    print("FAILED - " .. description .. (detail and ("\n    " .. detail) or ""))
  end
end

local function rss_kib()
  local file = assert(io.open("/proc/self/status", "r"))
  local text = file:read("*a")
  file:close()
  return tonumber(text:match("VmRSS:%s*(%d+)"))
end

-- The shell's parent is this process.
local function open_fds()
  local pipe = assert(io.popen("ls /proc/$PPID/fd | wc -l"))
  local count = tonumber(pipe:read("*a"))
  pipe:close()
  return count - 1 -- the pipe itself
end

local function measure()
  for _ = 1, 3 do collectgarbage("collect") end
  return { rss = rss_kib(), fds = open_fds(), heap = collectgarbage("count"), at = core.monotonic() }
end

harness.server()
local hook_calls = 0
local function count_hook() hook_calls = hook_calls + 1 end
local function new_client()
  return assert(harness.client {
    max_retries = 1, timeout = 5, max_body_bytes = 512 * 1024,
    hooks = { on_request = count_hook, on_response = count_hook, on_retry = count_hook },
  })
end

-- One request of a mix that goes through every path the library has: JSON
-- success, bodies, API routes with rate-limit headers, error bodies, retries,
-- dropped connections, invalid JSON, large bodies over the kept buffer size,
-- a body over max_body_bytes, pagination and timeouts.
local outcomes = {}
local function one(client, i)
  local res, err
  if i % 1000 == 0 then
    res, err = client:get("/fake/slow/", { query = { ms = 200 }, timeout = 0.05 })
  elseif i % 500 == 0 then
    res, err = client:get("/fake/big/", { query = { bytes = 300000 } })
  elseif i % 499 == 0 then
    res, err = client:get("/fake/big/", { query = { bytes = 600000 } })
  elseif i % 250 == 0 then
    res, err = client:collect("/fake/items/", { per_page = 5, limit = 10, query = { total = 10 } })
    if res then res = { status = 200 } end
  elseif i % 200 == 0 then
    res, err = client:get("/fake/close/")
  elseif i % 100 == 0 then
    res, err = client:get("/organizations/{org}/projects/", { query = { per_page = 5 } })
  elseif i % 99 == 0 then
    res, err = client:get("/fake/invalid-json/")
  elseif i % 50 == 0 then
    res, err = client:get("/fake/status/503/", { query = { shape = "html" } })
  elseif i % 20 == 0 then
    res, err = client:get("/fake/status/404/")
  elseif i % 10 == 0 then
    res, err = client:post("/fake/echo/", { body = { n = i, items = { 1, 2, 3 }, text = ("x"):rep(200) } })
  else
    res, err = client:get("/fake/echo/", { query = { n = i } })
  end
  local outcome = res and tostring(res.status) or (err.kind .. (err.code and ("/" .. err.code) or ""))
  outcomes[outcome] = (outcomes[outcome] or 0) + 1
  if err then local _ = tostring(err) end
end

local client = new_client()
local baseline
local started = core.monotonic()
for i = 1, total do
  one(client, i)
  if i % 1000 == 0 then
    -- a new client now and then: one closed, one left to the garbage collector
    client:close()
    new_client():get("/fake/echo/")
    client = new_client()
  end
  if i == checkpoint then baseline = measure() end
  if i % 10000 == 0 then
    io.write(string.format("  %d requests, RSS %d KiB, %d fds, Lua heap %.0f KiB\n", i, rss_kib(), open_fds(),
      collectgarbage("count")))
    io.flush()
  end
end
client:close()
local final = measure()
local seconds = core.monotonic() - started

local kinds = {}
for outcome, count in pairs(outcomes) do kinds[#kinds + 1] = outcome .. "=" .. count end
table.sort(kinds)
print(string.format("  %d requests in %.1f s (%.0f/s), %d hook calls; outcomes: %s", total, seconds,
  total / seconds, hook_calls, table.concat(kinds, " ")))
print(string.format("  at %d: RSS %d KiB, %d fds, Lua heap %.0f KiB; at %d: RSS %d KiB, %d fds, Lua heap %.0f KiB",
  checkpoint, baseline.rss, baseline.fds, baseline.heap, total, final.rss, final.fds, final.heap))

local expected = { "200", "not_found", "http", "decode", "network/network", "network/too_large", "timeout/timeout" }
local missing = {}
for _, outcome in ipairs(expected) do
  if not outcomes[outcome] then missing[#missing + 1] = outcome end
end
check(#missing == 0, "every kind of outcome happened", "missing: " .. table.concat(missing, ", "))
check(final.rss - baseline.rss < rss_limit, string.format("RSS grew by %d KiB from request %d to %d (limit %d)",
  final.rss - baseline.rss, checkpoint, total, rss_limit))
-- One descriptor of slack: libcurl may hold an idle connection (or be closing
-- one) at one measurement and not the other; a leak would add one per client
-- (a new one every 1000 requests) or per request.
check(final.fds <= baseline.fds + 1, string.format("open file descriptors: %d at request %d, %d at %d",
  baseline.fds, checkpoint, final.fds, total))
check(final.heap - baseline.heap < heap_limit, string.format("Lua heap grew by %.0f KiB (limit %d)",
  final.heap - baseline.heap, heap_limit))
print(string.format("%d passed, %d failed", passed, failed))
os.exit(failed == 0 and 0 or 1)
