-- Reads the fake Sentry's record of one key (/__fake/requests/KEY, JSON on
-- stdin) and prints "<429s> <200s> <most requests in one second> <when the 429s
-- came, seconds after FROM>", all from FROM to TO.
local cjson = require "cjson"
local from, to = tonumber(arg[1]) or 0, tonumber(arg[2]) or math.huge
local rejected, ok, per_window, busiest, rejected_at = 0, 0, {}, 0, {}
for _, request in ipairs(cjson.decode(io.read("*a"))) do
  if request.time >= from and request.time < to then
    if request.status == 429 then
      rejected = rejected + 1
      rejected_at[#rejected_at + 1] = string.format("%.2f", request.time - from)
    end
    if request.status == 200 then ok = ok + 1 end
    local window = math.floor(request.time)
    per_window[window] = (per_window[window] or 0) + 1
    busiest = math.max(busiest, per_window[window])
  end
end
print(rejected, ok, busiest, table.concat(rejected_at, ","))
