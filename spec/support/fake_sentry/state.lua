-- Server state in one lua_shared_dict, so POST /__fake/reset clears all of it.
-- There is a single worker and no call here yields, so read-modify-write
-- sequences cannot interleave.
-- luacheck: globals ngx

local json = require "fake_sentry.json"

local dict = ngx.shared.fake_sentry

local state = {}

function state.incr(key, by, ttl)
  return (dict:incr(key, by or 1, 0, ttl))
end

function state.get(key)
  return dict:get(key)
end

function state.get_json(key)
  local text = dict:get(key)
  return text and json.decode(text)
end

function state.set_json(key, value)
  assert(dict:set(key, json.encode(value)))
end

function state.set(key, value, ttl)
  assert(dict:set(key, value, ttl))
end

-- Sets key only if it is absent; true when this call set it.
function state.add(key, value)
  return (dict:add(key, value)) == true
end

function state.delete(key)
  dict:delete(key)
end

-- Per-scenario request log, read back through GET /__fake/requests/{key}.
function state.record(key, entry)
  local n = state.incr("rec:" .. key .. ":n")
  entry.n = n
  state.set_json("rec:" .. key .. ":" .. n, entry)
end

function state.records(key)
  local list = json.array()
  for i = 1, dict:get("rec:" .. key .. ":n") or 0 do
    list[#list + 1] = state.get_json("rec:" .. key .. ":" .. i)
  end
  return list
end

-- Called once per request (test-control routes under /__fake/ excluded).
function state.count_request(path, connection, address, authorized)
  state.incr("stats:requests")
  state.incr("path:" .. path)
  -- Per listening address: 127.0.0.2 plays "another host" in the secrecy specs.
  state.incr("addr:" .. address .. ":requests")
  if authorized then state.incr("addr:" .. address .. ":authorized") end
  -- Connection serial numbers never repeat, so counting first sightings counts
  -- TCP connections: that is how keep-alive becomes observable.
  if state.add("conn:" .. connection, true) then
    state.incr("stats:connections")
  end
end

function state.enter_flight()
  local now_in_flight = state.incr("stats:in_flight")
  if now_in_flight > (dict:get("stats:max_in_flight") or 0) then
    state.set("stats:max_in_flight", now_in_flight)
  end
  return now_in_flight
end

function state.leave_flight()
  state.incr("stats:in_flight", -1)
end

function state.in_flight()
  return dict:get("stats:in_flight") or 0
end

function state.max_in_flight()
  return dict:get("stats:max_in_flight") or 0
end

function state.stats()
  local by_path, by_address = {}, {}
  for _, key in ipairs(dict:get_keys(0)) do
    local path = key:match("^path:(.*)$")
    if path then by_path[path] = dict:get(key) end
    local address, counter = key:match("^addr:(.*):(%a+)$")
    if address then
      by_address[address] = by_address[address] or { requests = 0, authorized = 0 }
      by_address[address][counter] = dict:get(key)
    end
  end
  return {
    requests = dict:get("stats:requests") or 0,
    connections = dict:get("stats:connections") or 0,
    in_flight = state.in_flight(),
    max_in_flight = state.max_in_flight(),
    by_path = by_path,
    by_address = by_address,
  }
end

-- Forgets everything except the requests in flight right now, which will still
-- decrement the counter when they finish.
function state.reset()
  local in_flight = dict:get("stats:in_flight") or 0
  dict:flush_all()
  dict:flush_expired()
  dict:set("stats:in_flight", in_flight)
end

return state
