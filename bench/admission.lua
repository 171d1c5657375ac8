-- Rate-limit budgets for bench/driver.lua, run in its own process:
--
--   lua bench/admission.lua cost STORE COUNT [REDIS_PORT]
--     what one request's admission costs (admit, enter, learn) in STORE
--     ("memory" or "redis"), no network to Sentry: prints "cpu_us=X wall_us=Y"
--   lua bench/admission.lua burst FAKE_URL KEY COUNT [REDIS_PORT]
--     COUNT requests at once (one batch) to the fake Sentry's 10-per-1 s
--     endpoint; prints "ok=N seconds=S" (the 429s are counted by the server)
--
-- LUA_PATH/LUA_CPATH must reach lua/, bench/ and the built core (bench/driver.lua sets them).
local sentry = require "sentry"
local core = require "sentry.core"

local mode = arg[1]
local TOKEN = "sntryu_" .. string.rep("0123456789abcdef", 4)

local function budget_for(port)
  return port and { redis = { host = "127.0.0.1", port = tonumber(port) } } or nil
end

if mode == "cost" then
  local store, count, port = arg[2], tonumber(arg[3]) or 10000, arg[4]
  local cpu_us, wall_us = require("admission_cost").measure(store == "redis" and budget_for(port) or nil, count)
  print(string.format("cpu_us=%.2f wall_us=%.2f", cpu_us, wall_us))
elseif mode == "burst" then
  local url, key, count, port = arg[2], arg[3], tonumber(arg[4]) or 50, arg[5]
  local client = assert(sentry.new { token = TOKEN, base_url = url, config = false, sleep = core.sleep,
    budget = budget_for(port) })
  local requests = {}
  for i = 1, count do
    requests[i] = { "GET", "/fake/limited/" .. key .. "/", { query = { limit = 10, window = 1 } } }
  end
  local started = core.now()
  local ok = 0
  for _, result in ipairs(client:batch(requests, { concurrency = count })) do
    if result.res then ok = ok + 1 end
  end
  print(string.format("ok=%d seconds=%.2f", ok, core.now() - started))
  client:close()
else
  io.stderr:write("usage: lua bench/admission.lua cost STORE COUNT [PORT] | burst URL KEY COUNT [PORT]\n")
  os.exit(2)
end
