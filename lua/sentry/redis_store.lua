--- A budget store in Redis, shared by every host that names the same server.
-- Each step of `sentry.admission` runs inside Redis as one script (EVALSHA of
-- that very file), so a step is atomic across hosts and costs one round trip.
-- Inside OpenResty it talks over cosockets (non-blocking, kept alive in
-- nginx's pool); elsewhere over LuaSocket. A failure or a reply slower than
-- `timeout` (default 0.2 s) is an error the governor answers by admitting
-- locally (see `sentry.governor`).
-- @module sentry.redis_store
local admission = require "sentry.admission"

local redis_store = {}

local Store = {}
Store.__index = Store

--- Seconds to wait for Redis before the governor admits locally.
redis_store.TIMEOUT = 0.2

-- The script: the admission rule's own source, then a dispatch on ARGV.
local DISPATCH = [[
local ops = {
  get = function(key) local value = redis.call("GET", key); return value and tonumber(value) or nil end,
  set = function(key, value, ttl) redis.call("SET", key, tostring(value), "EX", ttl) end,
  add = function(key, value, ttl) return redis.call("SET", key, tostring(value), "NX", "EX", ttl) ~= false end,
  incr = function(key, delta, ttl)
    local value = redis.call("INCRBY", key, delta)
    if redis.call("TTL", key) < 0 then redis.call("EXPIRE", key, ttl) end
    return value
  end,
  delete = function(key) redis.call("DEL", key) end,
}
local step, prefix = ARGV[1], ARGV[2]
if step == "admit" then
  local action, wait, reason = admission.admit(ops, prefix, tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]))
  return { action, string.format("%.6f", wait), reason }
elseif step == "learn" then
  admission.learn(ops, prefix, tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6]),
    tonumber(ARGV[7]), tonumber(ARGV[8]), ARGV[9] == "1", ARGV[10] == "1")
  return 0
end
return admission.enter(ops, prefix) and 1 or 0
]]

local function script_source()
  local path = debug.getinfo(admission.admit, "S").source:match("^@(.*)$")
  local file = path and io.open(path, "rb")
  if not file then return nil, "cannot read the admission rule's source (" .. tostring(path) .. ")" end
  local source = file:read("*a")
  file:close()
  return "local admission = (function()\n" .. source .. "\nend)()\n" .. DISPATCH
end

local function encode(args)
  local parts = { "*" .. #args .. "\r\n" }
  for _, arg in ipairs(args) do
    local text = tostring(arg)
    parts[#parts + 1] = "$" .. #text .. "\r\n" .. text .. "\r\n"
  end
  return table.concat(parts)
end

-- One RESP reply: a string, number, array, false (nil bulk), or nil, message.
local function read_reply(sock)
  local line, err = sock:receive("*l")
  if not line then return nil, err end
  local kind, rest = line:sub(1, 1), line:sub(2)
  if kind == "+" then return rest end
  if kind == "-" then return nil, rest end
  if kind == ":" then return tonumber(rest) end
  if kind == "$" then
    local length = tonumber(rest)
    if not length or length < 0 then return false end
    local data, data_err = sock:receive(length + 2)
    if not data then return nil, data_err end
    return data:sub(1, length)
  end
  if kind == "*" then
    local items = {}
    for i = 1, tonumber(rest) or 0 do
      local item, item_err = read_reply(sock)
      if item == nil then return nil, item_err end
      items[i] = item
    end
    return items
  end
  return nil, "unexpected reply from Redis: " .. line:sub(1, 40)
end

--- A Redis store.
-- @tparam table options `{ host, port = 6379, timeout = 0.2, password, database, prefix }`
-- @treturn ?table the store
-- @treturn ?string why not
function redis_store.new(options)
  local script, problem = script_source()
  if not script then return nil, problem end
  return setmetatable({
    name = "redis " .. options.host .. ":" .. (options.port or 6379),
    host = options.host, port = options.port or 6379,
    timeout = options.timeout or redis_store.TIMEOUT,
    password = options.password, database = options.database,
    key_prefix = options.prefix or "",
    script = script, sha = nil, -- Redis names the script when it loads it
  }, Store)
end

-- One command, its reply; an error reply or a broken connection raises.
local function command(sock, args)
  local sent, err = sock:send(encode(args))
  if not sent then error(tostring(err), 0) end
  local reply, reply_err = read_reply(sock)
  if reply == nil then error(tostring(reply_err), 0) end
  return reply
end

-- A connection: a cosocket from nginx's pool in OpenResty, else a kept LuaSocket one.
function Store:_connect()
  local ngx = rawget(_G, "ngx")
  local sock, fresh
  if ngx and ngx.socket and ngx.socket.tcp then
    sock = ngx.socket.tcp()
    sock:settimeout(self.timeout * 1000)
    local ok, err = sock:connect(self.host, self.port)
    if not ok then error("cannot connect: " .. tostring(err), 0) end
    fresh = sock:getreusedtimes() == 0
  else
    if self.sock then return self.sock end
    sock = require("socket").tcp()
    sock:settimeout(self.timeout)
    local ok, err = sock:connect(self.host, self.port)
    if not ok then
      sock:close()
      error("cannot connect: " .. tostring(err), 0)
    end
    self.sock, fresh = sock, true
  end
  if fresh and self.password then command(sock, { "AUTH", self.password }) end
  if fresh and self.database then command(sock, { "SELECT", self.database }) end
  return sock
end

local unpack = table.unpack or unpack

-- Runs one step of the rule in Redis (loading the script when Redis does not
-- have it: first use, or a restarted server); a broken connection is dropped.
function Store:_run(args)
  local sock = self:_connect()
  local ok, reply = pcall(function()
    if not self.sha then self.sha = command(sock, { "SCRIPT", "LOAD", self.script }) end
    local ran, result = pcall(command, sock, { "EVALSHA", self.sha, 0, unpack(args) })
    if ran then return result end
    if not tostring(result):match("^NOSCRIPT") then error(result, 0) end
    self.sha = command(sock, { "SCRIPT", "LOAD", self.script })
    return command(sock, { "EVALSHA", self.sha, 0, unpack(args) })
  end)
  if not ok then
    sock:close()
    if self.sock == sock then self.sock = nil end
    error(reply, 0)
  end
  if sock.setkeepalive then sock:setkeepalive(60000, 16) end
  return reply
end

local function number_arg(value)
  return value == nil and "" or string.format("%.6f", value)
end

--- See `sentry.budget_stores`.
function Store:admit(prefix, now, max_wait, margin)
  local reply = self:_run { "admit", self.key_prefix .. prefix, number_arg(now), number_arg(max_wait),
    number_arg(margin) }
  return reply[1], tonumber(reply[2]), reply[3]
end

function Store:learn(prefix, now, reset, limit, remaining, concurrent_limit, concurrent_remaining, answered,
                     entered)
  self:_run { "learn", self.key_prefix .. prefix, number_arg(now), number_arg(reset), number_arg(limit), number_arg(remaining),
    number_arg(concurrent_limit), number_arg(concurrent_remaining), answered and "1" or "0", entered and "1" or "0" }
end

function Store:enter(prefix)
  return self:_run { "enter", self.key_prefix .. prefix } == 1
end

return redis_store
