--- The Lua clients of the benchmark, one per mode, each timing itself:
--
--     lua clients.lua MODE URL COUNT [WARMUP]
--
-- prints one line "seconds=<wall> cpu=<process CPU> count=<items> rss_kb=<peak RSS>"
-- (plus "key=value" extras) after a short untimed warm-up, or a message on
-- stderr and exit status 1. Modes:
--
--   module     client:get(path) on one sentry client (keep-alive, body decoded)
--   core       the C core alone: handle:perform, no Lua layer, body not decoded
--   luasocket  socket.http.request (a new connection per request, as it does),
--              body decoded with lua-cjson
--   luacurl    Debian's lua-curl (0.3): one reused easy handle, body decoded
--   paginate   client:paginate over COUNT items in pages of 100
--   ratelimit  one client:get answered 429 + Retry-After: 2, then 200
--   batch      COUNT requests to a 20 ms endpoint with client:batch, concurrency
--              in BENCH_CONCURRENCY (1 = plain client:get in a loop)
local mode, base, count, warmup = arg[1], arg[2], tonumber(arg[3]), tonumber(arg[4])
if not (mode and base and count) then
  io.stderr:write("usage: clients.lua MODE URL COUNT [WARMUP]\n")
  os.exit(2)
end

local socket = require "socket" -- the clock only (gettimeofday, microseconds)
local now = socket.gettime

local TOKEN = "sntryu_" .. ("a"):rep(64)
local LIST = "/api/0/organizations/acme/projects/"

local function fail(message)
  io.stderr:write("clients.lua ", mode, ": ", tostring(message), "\n")
  os.exit(1)
end

local function peak_rss_kb()
  local status = io.open("/proc/self/status", "r")
  if not status then return -1 end
  local text = status:read("*a")
  status:close()
  return tonumber(text:match("VmHWM:%s*(%d+)")) or -1
end

-- Runs step(i) for i = 1..n after `warm` untimed calls (WARMUP when given);
-- prints the line.
local function timed(n, warm, step, extra)
  for i = 1, warmup or warm do step(i) end
  collectgarbage()
  local started, cpu = now(), os.clock()
  local items = 0
  for i = 1, n do items = items + (step(i) or 1) end
  local seconds, cpu_seconds = now() - started, os.clock() - cpu
  io.write(string.format("seconds=%.6f cpu=%.6f count=%d rss_kb=%d%s\n", seconds, cpu_seconds, items,
    peak_rss_kb(), extra and (" " .. extra()) or ""))
end

local function new_client()
  local client, err = require("sentry").new { token = TOKEN, base_url = base, config = false, timeout = 10 }
  if not client then fail(err) end
  return client
end

local modes = {}

function modes.module()
  local client = new_client()
  timed(count, math.min(100, count), function()
    local res, err = client:get(LIST)
    if not res then fail(err) end
    if res.status ~= 200 or type(res.body) ~= "table" or #res.body ~= 3 then fail("unexpected response") end
  end)
end

function modes.core()
  local defaults = require("sentry.config").DEFAULTS
  local handle = require("sentry.core").new_handle { token = TOKEN, user_agent = "sentry-lua/bench",
    connect_timeout = defaults.connect_timeout, max_body_bytes = defaults.max_body_bytes }
  local url, headers = base .. LIST, { Accept = "application/json" }
  timed(count, math.min(100, count), function()
    local res, message = handle:perform("GET", url, headers, nil, 10)
    if not res then fail(message) end
    if res.status ~= 200 or #res.body ~= 2141 then fail("unexpected response") end
  end)
end

function modes.luasocket()
  local http, ltn12, cjson = require "socket.http", require "ltn12", require "cjson"
  http.TIMEOUT = 10
  local url = base .. LIST
  local headers = { authorization = "Bearer " .. TOKEN, accept = "application/json" }
  timed(count, math.min(20, count), function()
    local chunks = {}
    local ok, status = http.request { url = url, headers = headers, sink = ltn12.sink.table(chunks) }
    if not ok then fail(status) end
    local body = cjson.decode(table.concat(chunks))
    if status ~= 200 or #body ~= 3 then fail("unexpected response") end
  end)
end

function modes.luacurl()
  local curl, cjson = require "curl", require "cjson"
  local easy = curl.easy_init()
  local chunks, n = {}, 0
  easy:setopt(curl.OPT_URL, base .. LIST)
  easy:setopt(curl.OPT_TIMEOUT, 10)
  easy:setopt(curl.OPT_HTTPHEADER, { "Authorization: Bearer " .. TOKEN, "Accept: application/json" })
  easy:setopt(curl.OPT_WRITEFUNCTION, function(data) -- (data, size) in this binding
    n = n + 1
    chunks[n] = data
    return #data
  end)
  timed(count, math.min(100, count), function()
    n = 0
    local ok, message = easy:perform()
    if ok ~= 0 and ok ~= true then fail(message) end
    local body = cjson.decode(table.concat(chunks, "", 1, n))
    if #body ~= 3 then fail("unexpected response") end
  end)
end

function modes.paginate()
  local client = new_client()
  local path = "/api/0/bench/items/?total=" .. count
  timed(1, 0, function()
    local items = 0
    for item in client:paginate(path, { per_page = 100 }) do
      items = items + 1
      if item.id == nil then fail("item without id") end
    end
    if items ~= count then fail("paginate returned " .. items .. " items, not " .. count) end
    return items
  end)
end

function modes.ratelimit()
  local client = new_client()
  local attempts
  local key = tostring(now()):gsub("%D", "") .. tostring(math.random(1e6))
  timed(1, 0, function()
    local res, err = client:get("/api/0/bench/limited/", { query = { key = key } })
    if not res then fail(err) end
    attempts = res.attempts
    if res.status ~= 200 or attempts ~= 2 then fail("expected a 429 then a 200") end
  end, function() return "attempts=" .. attempts end)
end

-- ===================================================================
-- BATCH SLOT: runs once client.batch exists. client:batch(requests,
-- { concurrency = n }) takes { method =, path =, query = } tables and returns
-- one { res =, err = } per request, in order; adjust here if that changes.
local function run_batch(client, n, concurrency)
  local requests = {}
  for i = 1, n do requests[i] = { method = "GET", path = "/api/0/bench/slow/", query = { i = i } } end
  local results = client:batch(requests, { concurrency = concurrency })
  local ok, first_err = 0, nil
  for i = 1, n do
    local result = results[i]
    local res = type(result) == "table" and (result.res or result[1]) or nil
    if type(res) == "table" and res.status == 200 then
      ok = ok + 1
    elseif type(result) == "table" then
      first_err = first_err or result.err or result[2]
    end
  end
  if ok ~= n then fail(string.format("client:batch: %d of %d requests succeeded (%s)", ok, n, tostring(first_err))) end
end

function modes.batch()
  local client = new_client()
  local concurrency = tonumber(os.getenv("BENCH_CONCURRENCY")) or 1
  if client.batch == nil then
    io.write("missing: client.batch does not exist yet\n")
    return
  end
  timed(1, 0, function()
    run_batch(client, count, concurrency)
    return count
  end)
end
-- ===================================================================

local run = modes[mode] or fail("unknown mode")
run()
