--- The benchmark driver, run by bench/run (see there for the command line).
-- Starts the benchmark server, runs every client several times, interleaved,
-- and writes BENCHMARKS.md (full mode) or checks that each benchmark still
-- runs (--quick, for CI: no timing is asserted).
local server = require "server"
local core = require "sentry.core"

local options = { runs = 7 }
do
  local i = 1
  while arg[i] do
    local name, value = arg[i], arg[i + 1]
    if name == "--quick" or name == "--network" then
      options[name:sub(3)] = true
      i = i + 1
    elseif name == "--floor" or name == "--lua" or name == "--out" or name == "--others" or name == "--delay" then
      options[name:sub(3)] = value
      i = i + 2
    else
      io.stderr:write("driver.lua: unknown argument ", name, "\n")
      os.exit(2)
    end
  end
end
local QUICK = options.quick
local LUA = assert(options.lua, "--lua is required")
local FLOOR = assert(options.floor, "--floor is required")
local RUNS = QUICK and 1 or options.runs

-- Request counts per timed run (full mode, quick mode).
local COUNT = {
  inprocess = QUICK and 50 or 5000, -- keep-alive clients
  luasocket = QUICK and 20 or 2000, -- a new connection per request
  cli = QUICK and 5 or 300, -- one curl process per request
  pages_small = QUICK and 1000 or 10000,
  pages_large = QUICK and 3000 or 100000,
  batch = QUICK and 20 or 200,
  callgrind = QUICK and { 5, 15 } or { 100, 600 },
}

local TOKEN = "sntryu_" .. ("a"):rep(64)
local LIST = "/api/0/organizations/acme/projects/"

-- --- small helpers ---------------------------------------------------------

local function quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

local function capture(command)
  local pipe = assert(io.popen(command, "r"))
  local out = pipe:read("*a")
  local _, _, code = pipe:close()
  return out, code
end

local function trim(s)
  return (s:gsub("^%s+", ""):gsub("%s+$", ""))
end

local function first_line(command)
  return trim((capture(command .. " 2>/dev/null")):match("[^\n]*"))
end

local function has(program)
  return first_line("command -v " .. program) ~= ""
end

local function median(values)
  if #values == 0 then return nil end
  local sorted = {}
  for i, v in ipairs(values) do sorted[i] = v end
  table.sort(sorted)
  local middle = (#sorted + 1) / 2
  return (sorted[math.floor(middle)] + sorted[math.ceil(middle)]) / 2
end

local function max(values)
  local best
  for _, v in ipairs(values) do
    if not best or v > best then best = v end
  end
  return best
end

local function say(...)
  io.stdout:write(...)
  io.stdout:write("\n")
  io.stdout:flush()
end

-- --- checks (what --quick reports) -----------------------------------------

local passed, failed = 0, 0
local function check(name, ok, detail)
  if ok then
    passed = passed + 1
    say("ok - ", name)
  else
    failed = failed + 1
    say("not ok - ", name, detail and (": " .. detail) or "")
  end
  return ok
end

-- --- the machine -----------------------------------------------------------

-- Two cores or more: the server gets core 1, every client core 0. Where
-- allowed (root), both also run at a higher priority than the rest of the
-- machine, so that other work disturbs the figures less.
local cores = tonumber(first_line("nproc")) or 1
local PIN_SERVER, PIN_CLIENT
local PRIORITY = ""
if (capture("nice -n -10 true >/dev/null 2>&1; echo $?")):match("^0") then PRIORITY = "nice -n -10 " end
if cores >= 2 and has("taskset") then
  PIN_SERVER, PIN_CLIENT = PRIORITY .. "taskset -c 1 ", PRIORITY .. "taskset -c 0 "
else
  PIN_SERVER, PIN_CLIENT = PRIORITY, PRIORITY
end

local function machine_line()
  local cpu = first_line("grep -m1 'model name' /proc/cpuinfo"):gsub("^model name%s*:%s*", "")
  local debian = first_line("cat /etc/debian_version")
  return string.format("%s, %d cores, %s GiB RAM; Linux %s%s; libcurl %s, %s, nginx %s",
    cpu ~= "" and cpu or "unknown CPU", cores,
    first_line("awk '/MemTotal/ {printf \"%.0f\", $2 / 1048576}' /proc/meminfo"),
    first_line("uname -r"), debian ~= "" and (", Debian " .. debian) or "",
    first_line("pkg-config --modversion libcurl"), first_line(LUA .. " -v"):match("^(%S+ %S+)") or LUA,
    (first_line("nginx -v 2>&1 || /usr/sbin/nginx -v 2>&1"):match("nginx/(%S+)") or "?"))
end

-- --- running clients -------------------------------------------------------

local function lua_env(lua)
  return "env LUA_PATH=" .. quote("lua/?.lua;lua/?/init.lua;bench/?.lua;;")
    .. " LUA_CPATH=" .. quote("build/" .. lua .. "/?.so;;") .. " "
end

local function client_command(lua, mode, url, count, warmup, extra_env)
  return PIN_CLIENT .. lua_env(lua) .. (extra_env or "") .. lua .. " bench/clients.lua " .. mode .. " "
    .. quote(url) .. " " .. count .. (warmup and (" " .. warmup) or "")
end

-- Parses "seconds=... cpu=... count=... rss_kb=..." (+ extras) from a client.
local function parse_sample(out)
  local line = out:match("seconds=[^\n]*")
  if not line then return nil end
  local sample = {}
  for key, value in line:gmatch("([%w_]+)=(%S+)") do sample[key] = tonumber(value) or value end
  return sample
end

local function run_sample(command)
  local log = os.tmpname()
  local out, code = capture(command .. " 2>" .. quote(log))
  local file = io.open(log, "rb")
  local errors = file and file:read("*a") or ""
  if file then file:close() end
  os.remove(log)
  local sample = parse_sample(out)
  if not sample then return nil, trim(errors .. out) ~= "" and trim(errors .. out) or ("exit " .. tostring(code)), out end
  return sample, nil, out
end

-- The curl command line, one process per request, timed from here.
local function curl_cli_sample(url, count)
  local loop = string.format("i=0; while [ $i -lt %d ]; do curl -s -f --max-time 10 -o /dev/null -H %s -H %s %s || exit 1; "
    .. "i=$((i+1)); done", count, quote("Authorization: Bearer " .. TOKEN), quote("Accept: application/json"),
    quote(url))
  local started = core.monotonic()
  local _, code = capture(PIN_CLIENT .. "sh -c " .. quote(loop) .. " 2>&1")
  local seconds = core.monotonic() - started
  if code ~= nil and code ~= 0 then return nil, "curl exited with " .. tostring(code) end
  return { seconds = seconds, count = count }
end

local function loads(lua, module)
  if not has(lua) then return false end
  local _, code = capture(lua_env(lua) .. lua .. " -e " .. quote("require '" .. module .. "'") .. " >/dev/null 2>&1")
  return code == 0
end

-- --- the benchmarks ----------------------------------------------------------

local report = { rows = {} }

local function throughput(url)
  local list = url .. LIST
  -- Rows: id, label, interpreter, how to take one sample, note.
  local rows = {
    { id = "floor", label = "floor: C, one reused libcurl easy handle", lua = "-",
      run = function() return run_sample(PIN_CLIENT .. quote(FLOOR) .. " " .. quote(list) .. " " .. COUNT.inprocess) end,
      note = "body collected, not parsed" },
    { id = "module", label = "sentry-lua `client:get`", lua = LUA,
      run = function() return run_sample(client_command(LUA, "module", url, COUNT.inprocess)) end,
      note = "keep-alive; headers, rate limits, links, JSON body decoded" },
    { id = "core", label = "sentry-lua C core alone (`handle:perform`)", lua = LUA,
      run = function() return run_sample(client_command(LUA, "core", url, COUNT.inprocess)) end,
      note = "diagnostic: no Lua layer, body not decoded" },
    { id = "luasocket", label = "luasocket `socket.http`", lua = LUA,
      run = function() return run_sample(client_command(LUA, "luasocket", url, COUNT.luasocket)) end,
      note = "new connection per request (it closes); cjson decode" },
  }
  local curl_lua
  if loads(LUA, "curl") then
    curl_lua = LUA
  else
    -- Debian's lua-curl is built for Lua 5.1/5.2 only: compare on an
    -- interpreter where it loads, with the module built for that one too.
    for other in (options.others or ""):gmatch("%S+") do
      if loads(other, "curl") and loads(other, "sentry") and loads(other, "socket") then
        curl_lua = other
        break
      end
    end
    report.luacurl_missing = string.format("Debian's lua-curl does not load on %s (it is built for Lua 5.1 and 5.2)", LUA)
    if curl_lua then
      rows[#rows + 1] = { id = "module_other", label = "sentry-lua `client:get`", lua = curl_lua,
        run = function() return run_sample(client_command(curl_lua, "module", url, COUNT.inprocess)) end,
        note = "same as above, on the interpreter lua-curl loads on" }
      rows[#rows + 1] = { id = "luasocket_other", label = "luasocket `socket.http`", lua = curl_lua,
        run = function() return run_sample(client_command(curl_lua, "luasocket", url, COUNT.luasocket)) end,
        note = "same as above, on the interpreter lua-curl loads on" }
    end
  end
  if curl_lua then
    rows[#rows + 1] = { id = "luacurl", label = "lua-curl (Debian, 0.3)", lua = curl_lua,
      run = function() return run_sample(client_command(curl_lua, "luacurl", url, COUNT.inprocess)) end,
      note = "one reused easy handle; Lua write callback; cjson decode" }
  end
  rows[#rows + 1] = { id = "cli", label = "curl CLI, one process per request", lua = "-",
    run = function() return curl_cli_sample(list, COUNT.cli) end,
    note = "fork + exec + connect each time; body not decoded" }
  if not has("curl") then table.remove(rows) end

  for _, row in ipairs(rows) do row.samples = {} end
  for run = 1, RUNS do
    io.stdout:write("throughput run ", run, "/", RUNS, ":")
    for _, row in ipairs(rows) do
      local sample, problem = row.run()
      if sample then
        row.samples[#row.samples + 1] = sample
        io.stdout:write(" ", row.id, "=", string.format("%.0f", sample.count / sample.seconds))
      else
        row.problem = problem
        io.stdout:write(" ", row.id, "=FAILED")
      end
      io.stdout:flush()
    end
    say()
  end
  for _, row in ipairs(rows) do
    if check("throughput: " .. row.id .. " (" .. row.lua .. ")", #row.samples == RUNS, row.problem) then
      local rates, cpu = {}, {}
      for i, s in ipairs(row.samples) do
        rates[i] = s.count / s.seconds
        if s.cpu then cpu[#cpu + 1] = s.cpu / s.count * 1e6 end
      end
      row.rate = median(rates)
      row.cpu_us = median(cpu)
    end
  end
  report.rows = rows
  local by_id = {}
  for _, row in ipairs(rows) do by_id[row.id] = row end
  report.by_id = by_id
  -- Each run's rate over the floor's rate in the same run, then the median:
  -- runs minutes apart on a shared machine see different loads, runs
  -- seconds apart much less so.
  local floor = by_id.floor
  for _, row in ipairs(rows) do
    if floor and floor.rate and row.rate and #row.samples == #floor.samples then
      local ratios = {}
      for i, s in ipairs(row.samples) do
        local f = floor.samples[i]
        ratios[i] = (s.count / s.seconds) / (f.count / f.seconds)
      end
      row.ratio = median(ratios)
    end
  end
end

local function wrk_check(url)
  if not has("wrk") then
    check("wrk measures the server", false, "wrk is not installed (make deps)")
    return
  end
  local duration = QUICK and "1s" or "3s"
  local rates = {}
  for _ = 1, QUICK and 1 or 3 do
    local out = capture(PIN_CLIENT .. "wrk -t1 -c32 -d" .. duration .. " -H " .. quote("Authorization: Bearer " .. TOKEN)
      .. " " .. quote(url .. LIST) .. " 2>&1")
    rates[#rates + 1] = tonumber(out:match("Requests/sec:%s*([%d.]+)"))
  end
  -- the best run: other work on the machine only ever makes the server look slower
  report.wrk = max(rates)
  check("wrk measures the server", report.wrk ~= nil, "no Requests/sec in wrk's output")
end

local function pagination(url)
  report.pages = {}
  for _, total in ipairs { COUNT.pages_small, COUNT.pages_large } do
    local rates, rss, problem = {}, {}, nil
    for _ = 1, QUICK and 1 or 5 do
      local sample, why = run_sample(client_command(LUA, "paginate", url, total))
      if sample then
        rates[#rates + 1] = sample.count / sample.seconds
        rss[#rss + 1] = sample.rss_kb
      else
        problem = why
      end
    end
    if check("pagination: " .. total .. " items", problem == nil, problem) then
      report.pages[#report.pages + 1] = { total = total, pages = math.ceil(total / 100), rate = median(rates),
        rss_kb = max(rss) }
    end
  end
end

-- Loading the library, in fresh processes: `require`, `sentry.new`, and a
-- first call by name (which loads the operation layer).
local STARTUP_MODES = { "require", "new", "operation" }
local function startup()
  report.startup = {}
  for _, mode in ipairs(STARTUP_MODES) do
    local cpus, kibs, loaded, problem = {}, {}, nil, nil
    for _ = 1, QUICK and 1 or 15 do
      local out, code = capture(PIN_CLIENT .. lua_env(LUA) .. LUA .. " bench/startup.lua " .. mode .. " 2>&1")
      local cpu, kib, modules = out:match("cpu_ms=([%d.]+) kib=([%d.]+) operation_modules=(%d+)")
      if code == 0 and cpu then
        cpus[#cpus + 1], kibs[#kibs + 1], loaded = tonumber(cpu), tonumber(kib), tonumber(modules)
      else
        problem = trim(out):sub(-300)
      end
    end
    if check("start-up: " .. mode, problem == nil, problem) then
      report.startup[mode] = { cpu_ms = median(cpus), kib = median(kibs), operation_modules = loaded }
      if mode ~= "operation" then
        check("start-up: " .. mode .. " loads no part of the operation layer", loaded == 0,
          loaded .. " of its modules loaded")
      end
    end
  end
end

local function rate_limit_wait(url)
  local walls, cpus, problem = {}, {}, nil
  for _ = 1, QUICK and 1 or 3 do
    local sample, why = run_sample(client_command(LUA, "ratelimit", url, 1))
    if sample then
      walls[#walls + 1] = sample.seconds
      cpus[#cpus + 1] = sample.cpu
    else
      problem = why
    end
  end
  if check("rate-limit wait (429, Retry-After: 2)", problem == nil, problem) then
    report.wait = { wall = median(walls), cpu = median(cpus), cpu_max = max(cpus) }
  end
end

-- BATCH SLOT: runs once client.batch exists (see clients.lua, mode "batch").
local function batch(url)
  report.batch = {}
  -- the floor, sequential, on the same endpoint: what a 20 ms server leaves of the gap
  local floor_times = {}
  for _ = 1, QUICK and 1 or 3 do
    local sample = run_sample(PIN_CLIENT .. quote(FLOOR) .. " " .. quote(url .. "/api/0/bench/slow/") .. " " .. COUNT.batch)
    if sample then floor_times[#floor_times + 1] = sample.seconds end
  end
  if check("batch: the floor on the 20 ms endpoint", #floor_times > 0) then
    report.batch_floor = { seconds = median(floor_times), rate = COUNT.batch / median(floor_times) }
  end
  for _, concurrency in ipairs { 1, 10 } do
    local times, problem, missing = {}, nil, nil
    for _ = 1, QUICK and 1 or 5 do
      local sample, why, out = run_sample(client_command(LUA, "batch", url, COUNT.batch, nil,
        "BENCH_CONCURRENCY=" .. concurrency .. " "))
      if sample then
        times[#times + 1] = sample.seconds
      elseif out and out:find("missing:", 1, true) then
        missing = trim(out:match("missing:%s*([^\n]*)"))
        break
      else
        problem = why
      end
    end
    if missing then
      report.batch.missing = missing
      say("batch: not run (", missing, ")")
      break
    end
    if check("batch: concurrency " .. concurrency, problem == nil, problem) then
      report.batch[#report.batch + 1] = { concurrency = concurrency, seconds = median(times),
        rate = COUNT.batch / median(times) }
    end
  end
end

-- Rate-limit budgets (bench/admission.lua): what an admission costs in each
-- store, and the 429s a burst of 50 costs on the fake Sentry's 10-per-1 s endpoint.
local BUDGET_COST_COUNT = QUICK and 200 or 20000

local function cost_fields(out)
  local cpu, wall = out:match("cpu_us=(%S+) wall_us=(%S+)")
  return tonumber(cpu), tonumber(wall)
end

local function count_429(fake_url, key)
  local out = capture("curl -s --max-time 10 " .. quote(fake_url .. "/__fake/requests/" .. key))
  return select(2, out:gsub('"status":429', ""))
end

local function budgets(url)
  report.budgets = { costs = {}, bursts = {} }
  math.randomseed(os.time() + math.floor(os.clock() * 1e6))
  local redis_port
  local work = trim(capture("mktemp -d"))
  if has("redis-server") and has("redis-cli") then
    redis_port = 20000 + math.random(0, 39999)
    capture("redis-server --port " .. redis_port .. " --bind 127.0.0.1 --save '' --appendonly no --daemonize yes"
      .. " --dir " .. quote(work) .. " --pidfile " .. quote(work .. "/redis.pid") .. " >/dev/null 2>&1")
    for _ = 1, 50 do
      if capture("redis-cli -p " .. redis_port .. " ping 2>/dev/null"):match("PONG") then break end
      capture("sleep 0.1")
    end
  end
  local function cost(label, command)
    local cpus, walls, out = {}, {}, ""
    for _ = 1, QUICK and 1 or 3 do
      out = capture(command)
      local cpu, wall = cost_fields(out)
      if cpu then cpus[#cpus + 1], walls[#walls + 1] = cpu, wall end
    end
    if check("budget admission cost: " .. label, #cpus > 0, trim(out)) then
      report.budgets.costs[#report.budgets.costs + 1] = { label = label, cpu = median(cpus), wall = median(walls) }
    end
  end
  local admission = PIN_CLIENT .. lua_env(LUA) .. LUA .. " bench/admission.lua "
  cost("process memory (" .. LUA .. ")", admission .. "cost memory " .. BUDGET_COST_COUNT .. " 2>&1")
  cost("lua_shared_dict (nginx, LuaJIT)", "curl -s --max-time 60 " .. quote(url .. "/bench/admission?n="
    .. BUDGET_COST_COUNT))
  if redis_port then
    cost("Redis on loopback (" .. LUA .. ", LuaSocket)", admission .. "cost redis " .. math.floor(BUDGET_COST_COUNT / 10)
      .. " " .. redis_port .. " 2>&1")
  end
  local fake_state = work .. "/fake.env"
  local exports = capture("FAKE_SENTRY_STATE=" .. quote(fake_state) .. " spec/support/fake-sentry start 2>&1")
  local fake_url = exports:match("SENTRY_FAKE_URL=['\"]?([^'\"\n]+)")
  if check("budget bursts: the fake Sentry starts", fake_url ~= nil, trim(exports)) then
    local function burst(label, processes, each, port)
      local key = "bench-" .. tostring(math.random(1, 1e9))
      local command = admission .. "burst " .. quote(fake_url) .. " " .. key .. " " .. each
        .. (port and (" " .. port) or "") .. " 2>&1"
      local runs = {}
      for i = 1, processes do runs[i] = assert(io.popen(command)) end
      local ok, seconds = 0, 0
      for _, pipe in ipairs(runs) do
        local out = pipe:read("*a")
        pipe:close()
        ok = ok + (tonumber(out:match("ok=(%d+)")) or 0)
        seconds = math.max(seconds, tonumber(out:match("seconds=(%S+)")) or 0)
      end
      if check("budget burst: " .. label, ok == processes * each, ok .. " of " .. processes * each .. " succeeded") then
        report.budgets.bursts[#report.budgets.bursts + 1] = { label = label, ok = ok, seconds = seconds,
          rejected = count_429(fake_url, key) }
      end
    end
    burst("50 at once, one process (memory)", 1, 50)
    if redis_port then burst("2 processes × 25 at once (Redis)", 2, 25, redis_port) end
    capture("FAKE_SENTRY_STATE=" .. quote(fake_state) .. " spec/support/fake-sentry stop >/dev/null 2>&1")
  end
  if redis_port then capture("redis-cli -p " .. redis_port .. " shutdown nosave >/dev/null 2>&1") end
  capture("rm -rf " .. quote(work))
end

-- Where a client:get's CPU goes (bench/stages.lua), medians of 3 runs.
local STAGES = {
  { id = "get", label = "the whole `client:get`" },
  { id = "perform", label = "the transfer in the C core (`handle:perform`: libcurl, kernel, headers into a Lua table)" },
  { id = "json", label = "decoding the 2 KiB JSON body (sentry.json: the C core's decoder)" },
  { id = "links", label = "parsing the `Link` header (sentry.links, Lua)" },
  { id = "endpoints", label = "matching the endpoint catalogue (sentry.endpoints)" },
}

local function stages(url)
  local values = {}
  local problem
  for _ = 1, QUICK and 1 or 3 do
    local out, code = capture(PIN_CLIENT .. lua_env(LUA) .. LUA .. " bench/stages.lua " .. quote(url) .. " "
      .. (QUICK and 50 or 3000) .. " 2>&1")
    if code ~= nil and code ~= 0 then problem = trim(out) end
    for id, cpu, alloc in out:gmatch("stage=(%S+) cpu_us=(%S+) alloc_b=(%S+)") do
      values[id] = values[id] or { cpu = {}, alloc = {} }
      table.insert(values[id].cpu, tonumber(cpu))
      table.insert(values[id].alloc, tonumber(alloc))
    end
  end
  if check("stages of a client:get", problem == nil and values.get ~= nil, problem) then
    report.stages = {}
    for id, v in pairs(values) do report.stages[id] = { cpu = median(v.cpu), alloc = median(v.alloc) } end
  end
end

-- Instructions per request: the difference between two callgrind runs of
-- different lengths, so start-up and warm-up cancel out.
local function callgrind(url)
  if not has("valgrind") then
    check("callgrind", false, "valgrind is not installed (make deps)")
    return
  end
  local small, large = COUNT.callgrind[1], COUNT.callgrind[2]
  local function instructions(command, lua)
    local out = capture(lua_env(lua or LUA) .. "valgrind --tool=callgrind --callgrind-out-file=/dev/null " .. command .. " 2>&1")
    local refs = out:match("refs:%s*([%d,]+)")
    return refs and tonumber((refs:gsub(",", ""))), out
  end
  report.callgrind = {}
  local warmup = 20
  local targets = {
    { id = "floor", label = "floor", command = function(n) return quote(FLOOR) .. " " .. quote(url .. LIST) .. " " .. n end },
    { id = "core", label = "sentry-lua C core alone", command = function(n)
      return LUA .. " bench/clients.lua core " .. quote(url) .. " " .. n .. " " .. warmup end },
    { id = "module", label = "sentry-lua `client:get` (" .. LUA .. ")", command = function(n)
      return LUA .. " bench/clients.lua module " .. quote(url) .. " " .. n .. " " .. warmup end },
  }
  -- Debian's lua-curl + lua-cjson beside the module on the interpreter it loads on
  for other in (options.others or ""):gmatch("%S+") do
    if other ~= LUA and loads(other, "curl") and loads(other, "sentry") and loads(other, "socket") then
      for _, mode in ipairs { "module", "luacurl" } do
        targets[#targets + 1] = { id = mode .. "_other", lua = other,
          label = (mode == "module" and "sentry-lua `client:get`" or "lua-curl + lua-cjson") .. " (" .. other .. ")",
          command = function(n)
            return other .. " bench/clients.lua " .. mode .. " " .. quote(url) .. " " .. n .. " " .. warmup
          end }
      end
      break
    end
  end
  for _, target in ipairs(targets) do
    local a, out_a = instructions(target.command(small), target.lua)
    local b, out_b = instructions(target.command(large), target.lua)
    if check("callgrind: " .. target.id, a and b and b > a, trim(((not a) and out_a or out_b) or ""):sub(-300)) then
      report.callgrind[#report.callgrind + 1] = { id = target.id, label = target.label,
        per_request = (b - a) / (large - small) }
    end
  end
end


-- --- network-shaped: TLS, HTTP/2 or HTTP/1.1, an added round-trip time -------

-- The workloads of bench/network.lua and their physical limits in round trips
-- (rtt, seconds): HANDSHAKE is what a new connection costs before its first
-- request can leave, TCP's handshake plus TLS 1.3's.
local HANDSHAKE = 2
local WORKLOADS = {
  { id = "seq", label = "(a) 20 sequential GETs",
    limit = function(rtt) return 20 * rtt + HANDSHAKE * rtt end,
    limit_text = "20 × RTT + handshake (2 RTT)", slack = 0.10 },
  { id = "pages", label = "(b) 1 000 items in 10 pages, consumer 5 ms a page",
    limit = function(rtt) return math.max(10 * rtt, 0.050) + rtt + HANDSHAKE * rtt end,
    limit_text = "max(10 × RTT, 50 ms) + RTT + handshake", slack = 0.15 },
  { id = "detail", label = "(c) 100 detail GETs, ConcurrentLimit 25",
    limit = function(rtt) return math.ceil(100 / 25) * rtt + HANDSHAKE * rtt end,
    limit_text = "ceil(100/25) × RTT + handshake", slack = 0.15 },
}
local NET_CLIENTS = {
  { id = "module", label = "sentry-lua (`get`, `paginate` with `prefetch`, `batch`)" },
  { id = "curl", label = "curl CLI, a process per request (`xargs -P 25` for (c))" },
  { id = "luasec", label = "luasocket + luasec `ssl.https` (HTTP/1.1; (c) one at a time)" },
  { id = "luahttp", label = "lua-http (a connection per request; cqueues, 25 at a time for (c))" },
  { id = "luacurl", label = "lua-curl (one easy handle; no multi API: (c) one at a time)" },
}

local function net_sample(lua, client, workload, url, ca_file)
  local command = PIN_CLIENT .. lua_env(lua) .. lua .. " bench/network.lua " .. client .. " " .. workload .. " "
    .. quote(url) .. " " .. quote(ca_file)
  return run_sample(command)
end

local DRIVER_PID = trim(capture("echo $PPID"))

-- Starts bench/delay.c between a free port and target; returns its URL and pid.
local function start_delay(target_port, rtt_ms)
  for _ = 1, 20 do
    local port = math.random(20000, 59999)
    -- a backstop as for nginx: the proxy ends with the driver, however it ends
    local out = capture(PIN_SERVER .. quote(options.delay) .. " " .. port .. " " .. target_port .. " " .. rtt_ms
      .. " >/dev/null 2>&1 </dev/null & pid=$!; driver=" .. DRIVER_PID .. "; "
      .. "(while kill -0 $driver && kill -0 $pid; do sleep 0.5; done 2>/dev/null; kill $pid 2>/dev/null)"
      .. " >/dev/null 2>&1 </dev/null & sleep 0.2; kill -0 $pid 2>/dev/null && echo \"pid=$pid\"")
    local pid = tonumber(out:match("pid=(%d+)"))
    if pid then return "https://127.0.0.1:" .. port, pid end
  end
  error("bench: the delay proxy does not start", 0)
end

-- The interpreter the network clients run on: the first where lua-http and
-- lua-curl both load (Debian builds them for Lua 5.1 and LuaJIT), else LUA.
local function network_lua()
  for _, lua in ipairs { LUA, (options.others or ""):match("%S+") or LUA } do
    if loads(lua, "http.request") and loads(lua, "curl") and loads(lua, "ssl.https") and loads(lua, "sentry") then
      return lua
    end
  end
  for other in (options.others or ""):gmatch("%S+") do
    if loads(other, "http.request") and loads(other, "curl") and loads(other, "sentry") then return other end
  end
  return LUA
end

local function network(srv)
  if not options.delay then return end
  local lua = network_lua()
  local rtts = QUICK and { 20 } or { 0, 20, 50 }
  local protocols = { { id = "h2", label = "h2 + HTTP/1.1", port = srv.h2_port } }
  if not QUICK then protocols[2] = { id = "h1", label = "HTTP/1.1 only", port = srv.h1_port, only = "module" } end
  local pids, cells = {}, {}
  report.network = { lua = lua, rtts = rtts, protocols = protocols, cells = cells }
  local ok, problem = pcall(function()
    local urls = {}
    for _, protocol in ipairs(protocols) do
      urls[protocol.id] = {}
      for _, rtt in ipairs(rtts) do
        if rtt == 0 then
          urls[protocol.id][rtt] = "https://127.0.0.1:" .. protocol.port
        else
          local url, pid = start_delay(protocol.port, rtt)
          urls[protocol.id][rtt], pids[#pids + 1] = url, pid
        end
      end
    end
    local usable = {}
    for _, client in ipairs(NET_CLIENTS) do
      local needs = { luasec = "ssl.https", luahttp = "http.request", luacurl = "curl" }
      if client.id == "curl" then usable[client.id] = has("curl")
      else usable[client.id] = needs[client.id] == nil or loads(lua, needs[client.id]) end
    end
    for round = 1, QUICK and 1 or 3 do
      io.stdout:write("network round ", round, ":")
      for _, rtt in ipairs(rtts) do
        for _, protocol in ipairs(protocols) do
          for _, workload in ipairs(WORKLOADS) do
            for _, client in ipairs(NET_CLIENTS) do
              if usable[client.id] and (not protocol.only or protocol.only == client.id) then
                local key = table.concat({ protocol.id, rtt, workload.id, client.id }, "/")
                local cell = cells[key] or { seconds = {} }
                cells[key] = cell
                local sample, why = net_sample(lua, client.id, workload.id, urls[protocol.id][rtt], srv.ca_file)
                if sample then
                  cell.seconds[#cell.seconds + 1] = sample.seconds
                  io.stdout:write(" ", key, "=", string.format("%.3f", sample.seconds))
                else
                  cell.problem = why
                  io.stdout:write(" ", key, "=FAILED")
                end
                io.stdout:flush()
              end
            end
          end
        end
      end
      say()
    end
    -- connections and handshakes of one more module run of each workload
    for _, protocol in ipairs(protocols) do
      local stats_url = "https://127.0.0.1:" .. protocol.port .. "/api/0/bench/stats/"
      local function stats()
        local out = capture("curl -s --cacert " .. quote(srv.ca_file) .. " " .. quote(stats_url))
        return { connections = tonumber(out:match('"connections":(%d+)')),
          handshakes = tonumber(out:match('"handshakes":(%d+)')), requests = tonumber(out:match('"requests":(%d+)')) }
      end
      for _, workload in ipairs(WORKLOADS) do
        stats()
        if net_sample(lua, "module", workload.id, urls[protocol.id][rtts[#rtts]], srv.ca_file) then
          cells[protocol.id .. "/" .. workload.id .. "/connections"] = stats()
        end
      end
    end
  end)
  for _, pid in ipairs(pids) do capture("kill " .. pid .. " 2>/dev/null") end
  check("network-shaped benchmarks run", ok, tostring(problem))
  for key, cell in pairs(cells) do
    if cell.seconds then
      if check("network: " .. key, cell.problem == nil, cell.problem) then cell.median = median(cell.seconds) end
    end
  end
end

-- --- BENCHMARKS.md -------------------------------------------------------------

local function ratio(value, floor)
  if not value or not floor then return "—" end
  return string.format("%.2f×", value / floor)
end

local function count_format(n)
  local s = string.format("%.0f", n)
  local grouped = s:reverse():gsub("(%d%d%d)", "%1 "):reverse()
  return (grouped:gsub("^ ", ""))
end

local function target_lines()
  local lines = {}
  local by_id = report.by_id or {}
  local floor, module, cli, socket_row = by_id.floor, by_id.module, by_id.cli, by_id.luasocket
  local function add(ok, text)
    lines[#lines + 1] = string.format("- %s %s", ok == nil and "(not measured)" or (ok and "**holds**:" or "**misses**:"), text)
  end
  if floor and module and module.ratio then
    add(module.ratio >= 0.85, string.format("the module reaches at least 0.85× the floor's requests/s — %.2f×",
      module.ratio))
  else
    add(nil, "module vs floor")
  end
  if cli and module and cli.ratio and module.ratio then
    add(module.ratio >= 10 * cli.ratio, string.format("at least 10× the curl CLI — %.1f×", module.ratio / cli.ratio))
  else
    add(nil, "module vs curl CLI")
  end
  if socket_row and module and socket_row.ratio and module.ratio then
    add(module.ratio > socket_row.ratio, string.format("ahead of luasocket — %.2f×", module.ratio / socket_row.ratio))
  else
    add(nil, "module vs luasocket")
  end
  local pages = report.pages or {}
  if #pages == 2 then
    local growth = pages[2].rss_kb / pages[1].rss_kb - 1
    add(growth <= 0.10, string.format("pagination memory flat — peak RSS %s KiB for %s items, %s KiB for %s (%+.1f%%)",
      count_format(pages[1].rss_kb), count_format(pages[1].total), count_format(pages[2].rss_kb),
      count_format(pages[2].total), growth * 100))
  else
    add(nil, "pagination memory")
  end
  local start = report.startup or {}
  if start.require and start.new and start.operation then
    add(start.require.operation_modules == 0 and start.new.operation_modules == 0, string.format(
      "`require \"sentry\"` and `sentry.new` load no part of the operation layer (%d and %d of its 3 modules); "
      .. "its %.0f KiB and %.1f ms come with the first `client.api` call", start.require.operation_modules,
      start.new.operation_modules, start.operation.kib - start.new.kib, start.operation.cpu_ms - start.new.cpu_ms))
  else
    add(nil, "start-up")
  end
  local instructions = {}
  for _, c in ipairs(report.callgrind or {}) do instructions[c.id] = c end
  if instructions.floor then
    for _, id in ipairs { "module", "module_other" } do
      local c = instructions[id]
      if c then
        local times = c.per_request / instructions.floor.per_request
        add(times <= 2.5, string.format("callgrind: %s at most 2.5× the floor's instructions per request — %.2f×",
          c.label, times))
      end
    end
  end
  if instructions.module_other and instructions.luacurl_other then
    add(instructions.module_other.per_request < instructions.luacurl_other.per_request, string.format(
      "callgrind: %s fewer instructions per request than %s — %s vs %s",
      instructions.module_other.label, instructions.luacurl_other.label,
      count_format(instructions.module_other.per_request), count_format(instructions.luacurl_other.per_request)))
  end
  local module_other, luacurl = by_id.module_other, by_id.luacurl
  if module_other and luacurl and module_other.ratio and luacurl.ratio then
    add(module_other.ratio > luacurl.ratio, string.format(
      "ahead of lua-curl + lua-cjson in requests/s on %s — %.2f× vs %.2f× the floor", luacurl.lua,
      module_other.ratio, luacurl.ratio))
  end
  if report.wait then
    add(report.wait.cpu_max < 0.02, string.format(
      "a 429 wait burns no CPU — at most %.1f ms of CPU over a %.2f s wait (the two requests included)",
      report.wait.cpu_max * 1000, report.wait.wall))
  else
    add(nil, "429 wait")
  end
  return lines
end


-- The network section of BENCHMARKS.md (also printed by --quick).
local function network_lines()
  local net, lines = report.network, {}
  if not net then return lines end
  local function add(...) lines[#lines + 1] = table.concat({ ... }) end
  local function cell(protocol, rtt, workload, client)
    return net.cells[table.concat({ protocol, rtt, workload, client }, "/")]
  end
  add("## Network-shaped: TLS, HTTP/2 and round trips")
  add("")
  add("The same nginx over TLS 1.3 (a certificate made for the run), on a listener offering HTTP/2")
  add("and one offering HTTP/1.1 only, behind bench/delay.c: a loopback proxy that delivers each byte")
  add("RTT/2 late in each direction and holds a new connection for one RTT (the TCP handshake).")
  add("Every sample is a new client process: its first connection and handshake count, as they do for its")
  add("users (process start-up and `require` do not, except for the curl CLI, whose per-request start")
  add("is the point). All Lua clients on ", net.lua, " (where Debian's lua-http and lua-curl load).")
  add("Seconds are medians of ", QUICK and 1 or 3, " interleaved rounds; × limit is the time over the physical")
  add("limit beside it (a new connection's handshake is TCP + TLS 1.3, 2 RTT).")
  add("")
  for _, workload in ipairs(WORKLOADS) do
    add("### ", workload.label)
    add("")
    add("Physical limit: ", workload.limit_text, ".")
    add("")
    local header, rule = { "| client | server offers" }, { "| --- | ---" }
    for _, rtt in ipairs(net.rtts) do
      local limit = workload.limit(rtt / 1000)
      header[#header + 1] = string.format(" | RTT %d ms (limit %.0f ms) | × limit", rtt, limit * 1000)
      rule[#rule + 1] = " | ---: | ---:"
    end
    add(table.concat(header), " |")
    add(table.concat(rule), " |")
    for _, protocol in ipairs(net.protocols) do
      for _, client in ipairs(NET_CLIENTS) do
        local row, any = { "| ", client.label, " | ", protocol.label }, false
        for _, rtt in ipairs(net.rtts) do
          local c = cell(protocol.id, rtt, workload.id, client.id)
          local limit = workload.limit(rtt / 1000)
          if c and c.median then
            any = true
            row[#row + 1] = string.format(" | %.0f ms | %s", c.median * 1000,
              limit > 0 and string.format("%.2f×", c.median / limit) or "—")
          else
            row[#row + 1] = " | " .. (c and "failed" or "—") .. " | —"
          end
        end
        if any then add(table.concat(row), " |") end
      end
    end
    add("")
    for _, protocol in ipairs(net.protocols) do
      local counts = net.cells[protocol.id .. "/" .. workload.id .. "/connections"]
      if counts and counts.connections then
        add(string.format("sentry-lua, listener %s, RTT %d ms: %d TCP connection(s), %d TLS handshake(s) for %d requests.",
          protocol.label, net.rtts[#net.rtts], counts.connections, counts.handshakes or 0, counts.requests or 0))
      end
    end
    add("")
  end
  return lines
end

-- Targets of the network section: the module's time over the limit, and the
-- module against each peer, at each RTT above 0.
local function network_target_lines()
  local net, lines = report.network, {}
  if not net then return lines end
  local function add(ok, text)
    lines[#lines + 1] = string.format("- %s %s", ok == nil and "(not measured)" or (ok and "**holds**:" or "**misses**:"), text)
  end
  local function seconds(protocol, rtt, workload, client)
    local c = net.cells[table.concat({ protocol, rtt, workload, client }, "/")]
    return c and c.median
  end
  for _, workload in ipairs(WORKLOADS) do
    for _, rtt in ipairs(net.rtts) do
      if rtt > 0 then
        local mine, limit = seconds("h2", rtt, workload.id, "module"), workload.limit(rtt / 1000)
        if mine then
          add(mine <= limit * (1 + workload.slack), string.format("%s, RTT %d ms, HTTP/2: within %d%% of the limit — %.2f×",
            workload.label, rtt, workload.slack * 100, mine / limit))
          local slowest_ratio, behind = math.huge, {}
          for _, client in ipairs(NET_CLIENTS) do
            local theirs = seconds("h2", rtt, workload.id, client.id)
            if client.id ~= "module" and theirs then
              slowest_ratio = math.min(slowest_ratio, theirs / mine)
              if theirs <= mine then behind[#behind + 1] = client.id end
            end
          end
          if slowest_ratio < math.huge then
            add(#behind == 0, string.format("%s, RTT %d ms: ahead of every peer — the closest takes %.2f× the module's time%s",
              workload.label, rtt, slowest_ratio, #behind > 0 and (" (behind " .. table.concat(behind, ", ") .. ")") or ""))
          end
          local cli = seconds("h2", rtt, workload.id, "curl")
          if workload.id == "seq" and cli then
            add(cli >= 5 * mine, string.format("%s, RTT %d ms, TLS: at least 5× the curl CLI — %.1f×", workload.label,
              rtt, cli / mine))
          end
        end
      end
    end
  end
  return lines
end

local function write_report(path, machine, url_note)
  local out = {}
  local function line(...) out[#out + 1] = table.concat({ ... }) end
  line("# Benchmarks")
  line("")
  line("Generated by `make bench` (bench/run); do not edit by hand — the notes at the end come")
  line("from bench/notes.md. Regenerate on an idle machine; the figures below are medians of")
  line(RUNS, " interleaved runs, each figure also given as a ratio to the floor (the median over the rounds")
  line("of each round's ratio: every round runs the floor, then each client once).")
  line("")
  line("**Machine:** ", machine)
  line("")
  line("**Code measured:** ", url_note)
  line("")
  line("**Setup.** One nginx worker on 127.0.0.1 serves a static 2 KiB Sentry-shaped JSON list")
  line("(`/api/0/organizations/acme/projects/`, 3 projects) with a `Link` header and the five")
  line("`X-Sentry-Rate-Limit-*` headers; Lua handlers serve 100-item pages, a 20 ms endpoint")
  line("and a 429. ", PIN_SERVER:find("taskset", 1, true)
    and "The server is pinned to core 1 and every client to core 0 (`taskset`), so they do not compete for a core"
    or "Client and server are not pinned (fewer than 2 cores, or no taskset)",
    PRIORITY ~= "" and "; both run at `nice -n -10`." or ".")
  line("Every request carries a bearer token and `Accept: application/json`. In-process clients")
  line("make ", count_format(COUNT.inprocess), " timed requests per run after an untimed warm-up (luasocket ",
    count_format(COUNT.luasocket), ", the curl CLI ", COUNT.cli, "); each client times itself,")
  line("the curl CLI loop is timed from outside (so process start-up counts, as it does for its users).")
  line("")
  line("## Sequential GETs of the 2 KiB list")
  line("")
  line("| client | Lua | requests/s | × floor | CPU µs/request | what it does |")
  line("| --- | --- | ---: | ---: | ---: | --- |")
  for _, row in ipairs(report.rows) do
    line(string.format("| %s | %s | %s | %s | %s | %s |", row.label, row.lua,
      row.rate and count_format(row.rate) or "failed", row.ratio and string.format("%.2f×", row.ratio) or "—",
      row.cpu_us and string.format("%.0f", row.cpu_us) or "—", row.note))
  end
  if report.luacurl_missing then
    line("")
    line(report.luacurl_missing, report.by_id.luacurl and ("; its rows ran on " .. report.by_id.luacurl.lua
      .. ", with the module and luasocket measured again there for a same-interpreter comparison.") or ".")
  end
  line("")
  if report.wrk then
    local fastest = 0
    for _, row in ipairs(report.rows) do
      if row.rate and row.rate > fastest then fastest = row.rate end
    end
    line(string.format("**Server headroom:** wrk (1 thread, 32 connections, on the client core; best of 3) gets %s",
      count_format(report.wrk)))
    line(string.format("requests/s from the server, %.1f× the fastest client measured (%s). %s", report.wrk / fastest,
      fastest >= 1 and count_format(fastest) .. "/s" or "?",
      report.wrk >= 5 * fastest and "The server is not what limits the clients."
        or "**Below the 5× wanted: the server may limit the fastest clients.**"))
    line("")
  end
  line("## Callgrind: instructions per request")
  line("")
  line("User-space instructions of the client process only (the server is another process),")
  line("from the difference of two runs (", COUNT.callgrind[1], " and ", COUNT.callgrind[2],
    " requests) so start-up cancels out. Stable on a noisy machine.")
  line("")
  line("| client | instructions/request | × floor |")
  line("| --- | ---: | ---: |")
  local floor_ir
  for _, c in ipairs(report.callgrind or {}) do
    if c.id == "floor" then floor_ir = c.per_request end
  end
  for _, c in ipairs(report.callgrind or {}) do
    line(string.format("| %s | %s | %s |", c.label, count_format(c.per_request), ratio(c.per_request, floor_ir)))
  end
  line("")
  if report.stages and report.stages.get then
    local st = report.stages
    line("## Where a `client:get`'s CPU time goes")
    line("")
    line("bench/stages.lua times the whole call, then each part alone in the same process on the same")
    line("response (CPU time, kernel included, garbage collection included; medians of 3 runs).")
    line("")
    line("| part | CPU µs/request | share | bytes allocated |")
    line("| --- | ---: | ---: | ---: |")
    local rest = st.get.cpu
    for _, stage in ipairs(STAGES) do
      local v = st[stage.id]
      if v then
        if stage.id ~= "get" then rest = rest - v.cpu end
        line(string.format("| %s | %.1f | %.0f%% | %s |", stage.label, v.cpu, v.cpu / st.get.cpu * 100,
          count_format(v.alloc)))
      end
    end
    line(string.format("| the rest: URL and header building, exchange and retry bookkeeping, hook and rate-limit "
      .. "tables, collecting the garbage of it all | %.1f | %.0f%% | |", rest, rest / st.get.cpu * 100))
    local floor_row = report.by_id and report.by_id.floor
    if floor_row and floor_row.cpu_us then
      line(string.format("| for comparison: the floor, whole request | %.1f | | |", floor_row.cpu_us))
    end
    line("")
  end
  line("## Pagination")
  line("")
  line("`for item in client:paginate(path, { per_page = 100 })`, pages of 100 Sentry-issue-shaped")
  line("items (about 220 bytes each) with cursor `Link` headers, built by a Lua handler. Peak RSS")
  line("is the client process's VmHWM, the largest of the runs.")
  line("")
  line("| items | pages | items/s | peak RSS |")
  line("| ---: | ---: | ---: | ---: |")
  for _, p in ipairs(report.pages or {}) do
    line(string.format("| %s | %s | %s | %s KiB |", count_format(p.total), count_format(p.pages), count_format(p.rate),
      count_format(p.rss_kb)))
  end
  line("")
  line("## Start-up")
  line("")
  line("A fresh process per sample (medians of ", QUICK and 1 or 15, "): CPU time and the Lua heap left in use after a full")
  line("collection. The C core and libcurl are loaded by `require`; the operations' schema data only by the")
  line("first call by name.")
  line("")
  line("| what the process does | CPU ms | Lua heap KiB | operation modules loaded |")
  line("| --- | ---: | ---: | ---: |")
  local labels = { require = "`require \"sentry\"`", new = "… and `sentry.new`",
    operation = "… and one `client.api` call (refused offline)" }
  for _, mode in ipairs(STARTUP_MODES) do
    local v = report.startup and report.startup[mode]
    if v then
      line(string.format("| %s | %.1f | %.0f | %d of 3 |", labels[mode], v.cpu_ms, v.kib, v.operation_modules))
    end
  end
  line("")
  line("## Waiting out a 429")
  line("")
  if report.wait then
    line(string.format("One `client:get` answered 429 with `Retry-After: 2`, then 200: %.2f s wall, %.1f ms of CPU",
      report.wait.wall, report.wait.cpu * 1000))
    line(string.format("(median; the most in any run: %.1f ms). The wait is a `nanosleep`, not a poll.",
      report.wait.cpu_max * 1000))
  else
    line("Not measured (the benchmark failed).")
  end
  line("")
  line("## Rate-limit budgets")
  line("")
  if report.budgets then
    line("What one request's admission costs (admit, enter, learn; a window with room, so no wait),")
    line("bench/admission.lua, medians of ", QUICK and 1 or 3, " runs:")
    line("")
    line("| store | CPU µs/request | wall µs/request |")
    line("| --- | ---: | ---: |")
    for _, c in ipairs(report.budgets.costs) do
      line(string.format("| %s | %.1f | %.1f |", c.label, c.cpu, c.wall))
    end
    line("")
    line("Bursts on the fake Sentry's endpoint that allows 10 requests per 1 s window (the server")
    line("counts the 429s); a client per process, all requests sent as one `client:batch`:")
    line("")
    line("| burst | succeeded | responses 429 | seconds |")
    line("| --- | ---: | ---: | ---: |")
    for _, b in ipairs(report.budgets.bursts) do
      line(string.format("| %s | %d | %d | %.1f |", b.label, b.ok, b.rejected, b.seconds))
    end
    line("")
    line("The host suite spec/hosts/budget measures nginx workers and hosts under `wrk` (README,")
    line("\"Many callers, workers and hosts\").")
  else
    line("Not measured (the benchmark failed).")
  end
  line("")
  line("## Concurrency (client:batch)")
  line("")
  if report.batch and report.batch.missing then
    line("Not run: ", report.batch.missing, ". The slot is ready (bench/clients.lua, mode `batch`):")
    line(string.format("%d requests to a 20 ms endpoint at concurrency 1 and 10, run as soon as `client.batch` exists.",
      COUNT.batch))
  elseif report.batch and #report.batch > 0 then
    line(string.format("%d requests to an endpoint that answers after 20 ms.", COUNT.batch))
    line("")
    local floor_rate = report.batch_floor and report.batch_floor.rate
    line("| client | concurrency | seconds | requests/s | × floor | × concurrency 1 |")
    line("| --- | ---: | ---: | ---: | ---: | ---: |")
    if report.batch_floor then
      line(string.format("| floor (C, sequential) | 1 | %.2f | %s | 1.00× | |", report.batch_floor.seconds,
        count_format(floor_rate)))
    end
    for _, b in ipairs(report.batch) do
      line(string.format("| sentry-lua `client:batch` | %d | %.2f | %s | %s | %s |", b.concurrency, b.seconds,
        count_format(b.rate), ratio(b.rate, floor_rate), ratio(b.rate, report.batch[1].rate)))
    end
  end
  line("")
  for _, l in ipairs(network_lines()) do line(l) end
  line("## Targets")
  line("")
  for _, l in ipairs(target_lines()) do line(l) end
  for _, l in ipairs(network_target_lines()) do line(l) end
  line("")
  local notes = io.open("bench/notes.md", "rb")
  if notes then
    line(trim(notes:read("*a")))
    notes:close()
    line("")
  end
  local file = assert(io.open(path, "wb"))
  file:write(table.concat(out, "\n"))
  file:close()
end

-- --- main -------------------------------------------------------------------

local bench_dir = trim(capture("pwd")) .. "/bench"
local ok_start, srv = pcall(server.start, { bench_dir = bench_dir, pin = PIN_SERVER })
if not check("benchmark server starts", ok_start, tostring(srv)) then
  say(passed, " passed, ", failed, " failed")
  os.exit(1)
end
say("server: ", srv.url, PIN_SERVER:find("taskset", 1, true) and " (server on core 1, clients on core 0)" or " (not pinned)")

local ran, problem = pcall(function()
  if options.network then return network(srv) end
  throughput(srv.url)
  wrk_check(srv.url)
  pagination(srv.url)
  startup()
  rate_limit_wait(srv.url)
  batch(srv.url)
  budgets(srv.url)
  stages(srv.url)
  callgrind(srv.url)
  network(srv)
end)
server.stop(srv)
check("benchmarks finish", ran, tostring(problem))

if not QUICK and not options.network and ran then
  local commit = first_line("git rev-parse --short HEAD")
  local dirty = first_line("git status --porcelain --untracked-files=no -- src lua | head -n 1") ~= ""
  local code_note = commit ~= "" and ("commit " .. commit .. (dirty and ", with uncommitted changes in src/ or lua/" or ""))
    or "unknown"
  write_report(options.out or "BENCHMARKS.md", machine_line(), code_note)
  say("wrote ", options.out or "BENCHMARKS.md")
  for _, l in ipairs(target_lines()) do say(l) end
end
if QUICK or options.network then
  for _, l in ipairs(network_lines()) do say(l) end
end
for _, l in ipairs(network_target_lines()) do say(l) end
say(passed, " passed, ", failed, " failed")
os.exit(failed == 0 and 0 or 1)
