--- Where one client:get's CPU time goes: the whole call, then its parts timed
-- alone in the same process on the same response.
--
--     lua stages.lua URL COUNT
--
-- prints one line per stage, "stage=<id> cpu_us=<CPU µs per call> alloc_b=<bytes
-- allocated per call>". Parts that reach into the client's internals
-- (the transport's libcurl handle) are skipped when those are gone.
local base, count = arg[1], tonumber(arg[2])
if not (base and count) then
  io.stderr:write("usage: stages.lua URL COUNT\n")
  os.exit(2)
end

local sentry = require "sentry"
local json = require "sentry.json"
local links = require "sentry.links"
local endpoints = require "sentry.endpoints"

local client = assert(sentry.new { token = "sntryu_" .. ("a"):rep(64), base_url = base, config = false, timeout = 10 })
local PATH = "/api/0/organizations/acme/projects/"
local target = client.base_url .. "organizations/acme/projects/"
local first = assert(client:get(PATH))
local link = first.headers.link

-- CPU per call with the collector running (its cost included), and the bytes
-- allocated per call with it stopped.
local function measure(id, f)
  for _ = 1, math.min(count, 100) do f() end
  collectgarbage()
  collectgarbage("stop")
  local before = collectgarbage("count")
  local n = math.min(count, 1000)
  for _ = 1, n do f() end
  local alloc = (collectgarbage("count") - before) * 1024 / n
  collectgarbage("restart")
  collectgarbage()
  local started = os.clock()
  for _ = 1, count do f() end
  io.write(string.format("stage=%s cpu_us=%.2f alloc_b=%.0f\n", id, (os.clock() - started) / count * 1e6, alloc))
end

measure("get", function() assert(client:get(PATH)) end)
local transport = rawget(client, "_transport")
local handle = type(transport) == "table" and transport.handle
if type(handle) == "userdata" and handle.perform then
  local headers = { Accept = "application/json" }
  measure("perform", function() assert(handle:perform("GET", target, headers, nil, 10)) end)
  local raw = assert(handle:perform("GET", target, headers, nil, 10))
  local content_type, body = raw.headers["content-type"], raw.body
  measure("json", function() assert(json.decode_response(content_type, body)) end)
end
measure("links", function() assert(links.parse(link)) end)
measure("endpoints", function() assert(endpoints.match("GET", target)) end)
