--- A budget store in Redis, shared by every host that names the same server.
-- Each step of `sentry.admission` runs inside Redis as one script (EVALSHA of
-- that very file), so a step is atomic across hosts and costs one round trip.
-- Inside OpenResty it talks over cosockets (non-blocking, kept alive in
-- nginx's pool); elsewhere over LuaSocket. A failure or a reply slower than
-- `timeout` (default 0.2 s) is an error the governor answers by admitting
-- locally (see `sentry.governor`).
-- @module sentry.redis_store
local admission = require "sentry.admission"
local core = require "sentry.core_loader"

local redis_store = {}

local Store = {}
Store.__index = Store

--- Seconds to wait for Redis before the governor admits locally.
redis_store.TIMEOUT = 0.2

-- The script: the admission rule's own source, then a dispatch on ARGV.
local DISPATCH = [[
local ops = {
  get = function(prefix, name) local value = redis.call("GET", prefix .. name); return value and tonumber(value) or nil end,
  set = function(prefix, name, value, ttl) redis.call("SET", prefix .. name, tostring(value), "EX", ttl) end,
  add = function(prefix, name, value, ttl)
    return redis.call("SET", prefix .. name, tostring(value), "NX", "EX", ttl) ~= false
  end,
  incr = function(prefix, name, delta, ttl)
    local key = prefix .. name
    local value = redis.call("INCRBY", key, delta)
    if redis.call("TTL", key) < 0 then redis.call("EXPIRE", key, ttl) end
    return value
  end,
  delete = function(prefix, name) redis.call("DEL", prefix .. name) end,
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

-- Limits on what a reply may be: ours are a few short strings, so anything
-- larger is not our script answering (a wrong port, a proxy, a broken server).
local MAX_BUFFER = 64 * 1024
local MAX_ITEMS = 8

-- Reads a reply within a deadline for the whole reply, not for each read: a
-- server that drips bytes cannot hold a request past `timeout`.
local Reader = {}
Reader.__index = Reader

local function new_reader(sock, deadline)
  return setmetatable({ sock = sock, deadline = deadline, buffer = "", cosocket = sock.receiveany ~= nil }, Reader)
end

-- Gives the socket's next operation what is left of the deadline, or raises.
local function time_left(sock, deadline)
  local left = deadline - core.monotonic()
  if left <= 0 then error("timeout", 0) end
  if sock.receiveany then sock:settimeout(math.max(1, math.floor(left * 1000))) else sock:settimeout(left, "t") end
  return left
end

-- Appends whatever arrives next (at least one byte), or raises.
function Reader:fill()
  local sock, data, err, partial = self.sock
  local left = time_left(sock, self.deadline)
  if self.cosocket then
    data, err = sock:receiveany(4096)
  else
    local readable = require("socket").select({ sock }, nil, left)
    if not readable[1] and not sock:dirty() then error("timeout", 0) end
    sock:settimeout(0)
    data, err, partial = sock:receive(4096)
    data = data or partial
    if data == "" then data = nil end
  end
  if not data then error(tostring(err or "closed"), 0) end
  self.buffer = self.buffer .. data
  if #self.buffer > MAX_BUFFER then error("a reply longer than " .. MAX_BUFFER .. " bytes", 0) end
end

function Reader:line()
  while true do
    local at = self.buffer:find("\r\n", 1, true)
    if at then
      local line = self.buffer:sub(1, at - 1)
      self.buffer = self.buffer:sub(at + 2)
      return line
    end
    self:fill()
  end
end

function Reader:bytes(n)
  while #self.buffer < n do self:fill() end
  local data = self.buffer:sub(1, n)
  self.buffer = self.buffer:sub(n + 1)
  return data
end

-- One RESP reply: a string, number, array, or false (nil bulk); an error
-- reply or anything malformed raises.
local function read_reply(reader, depth)
  local line = reader:line()
  local kind, rest = line:sub(1, 1), line:sub(2)
  if kind == "+" then return rest end
  if kind == "-" then error(rest, 0) end
  local count = tonumber(rest)
  if kind == ":" and count then return count end
  if kind == "$" and count then
    if count < 0 then return false end
    if count > MAX_BUFFER then error("a reply longer than " .. MAX_BUFFER .. " bytes", 0) end
    local data = reader:bytes(count + 2)
    if data:sub(-2) ~= "\r\n" then error("a malformed reply from Redis", 0) end
    return data:sub(1, count)
  end
  if kind == "*" and count and count <= MAX_ITEMS and depth < 2 then
    local items = {}
    for i = 1, count do items[i] = read_reply(reader, depth + 1) end
    return items
  end
  error("unexpected reply from Redis: " .. string.format("%q", line:sub(1, 40)), 0)
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
    -- nginx pools connections by name: one logged in or on another database
    -- must not serve this store (the password only as a digest)
    pool = string.format("sentry-redis:%s:%d:%s:%s", options.host, options.port or 6379, tostring(options.database),
      options.password and core.sha256_hex(options.password):sub(1, 16) or ""),
    key_prefix = options.prefix or "",
    script = script, sha = nil, -- Redis names the script when it loads it
  }, Store)
end

-- One command, its reply, read before `deadline` (core.monotonic); an error
-- reply, a broken connection or a late or malformed reply raises.
local function command(sock, deadline, args)
  time_left(sock, deadline)
  local sent, err = sock:send(encode(args))
  if not sent then error(tostring(err), 0) end
  local reader = new_reader(sock, deadline)
  local reply = read_reply(reader, 0)
  if reader.buffer ~= "" then error("more bytes from Redis than one reply", 0) end
  return reply
end

-- A connection: a cosocket from nginx's pool in OpenResty, else a kept LuaSocket one.
function Store:_connect(deadline)
  if self.sock then return self.sock end
  local ngx = rawget(_G, "ngx")
  local cosocket = ngx and ngx.socket and ngx.socket.tcp
  local sock = cosocket and ngx.socket.tcp() or require("socket").tcp()
  time_left(sock, deadline)
  local ok, err
  if cosocket then
    ok, err = sock:connect(self.host, self.port, { pool = self.pool })
  else
    ok, err = sock:connect(self.host, self.port)
  end
  if not ok then
    sock:close()
    error("cannot connect: " .. tostring(err), 0)
  end
  if cosocket and sock:getreusedtimes() > 0 then return sock end
  local ready, problem = pcall(function()
    if self.password and command(sock, deadline, { "AUTH", self.password }) ~= "OK" then
      error("AUTH was not answered OK", 0)
    end
    if self.database and command(sock, deadline, { "SELECT", self.database }) ~= "OK" then
      error("SELECT " .. tostring(self.database) .. " was not answered OK", 0)
    end
  end)
  if not ready then
    sock:close()
    error(problem, 0)
  end
  if not cosocket then self.sock = sock end -- nginx keeps cosockets in its own pool
  return sock
end

local unpack = table.unpack or unpack

-- Runs one step of the rule in Redis (loading the script when Redis does not
-- have it: first use, or a restarted server); a broken connection is dropped.
function Store:_run(args)
  local deadline = core.monotonic() + self.timeout
  local sock = self:_connect(deadline)
  local ok, reply = pcall(function()
    local function load()
      local sha = command(sock, deadline, { "SCRIPT", "LOAD", self.script })
      if type(sha) ~= "string" or not sha:match("^%x+$") or #sha ~= 40 then
        error("SCRIPT LOAD was not answered with a script's SHA-1", 0)
      end
      self.sha = sha
    end
    if not self.sha then load() end
    local ran, result = pcall(command, sock, deadline, { "EVALSHA", self.sha, 0, unpack(args) })
    if ran then return result end
    if not tostring(result):match("^NOSCRIPT") then error(result, 0) end
    load()
    return command(sock, deadline, { "EVALSHA", self.sha, 0, unpack(args) })
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

local ACTIONS = { send = true, reserved = true, ask_again = true, refuse = true }

-- Only the script's own answers are believed: anything else (a server that
-- answers every command alike, a wait that would spin) is a store failure.
local function malformed(step, reply)
  error(string.format("unexpected reply from Redis to %s: %s", step,
    type(reply) == "table" and "an array of " .. #reply or string.format("%q", tostring(reply):sub(1, 40))), 0)
end

--- See `sentry.budget_stores`.
function Store:admit(prefix, now, max_wait, margin)
  local reply = self:_run { "admit", self.key_prefix .. prefix, number_arg(now), number_arg(max_wait),
    number_arg(margin) }
  local action = type(reply) == "table" and reply[1]
  local wait = type(reply) == "table" and type(reply[2]) == "string" and tonumber(reply[2])
  if not ACTIONS[action] or not wait or wait ~= wait or wait < 0 or wait == math.huge
    or (action == "ask_again" and wait <= 0) or (reply[3] and type(reply[3]) ~= "string") then
    malformed("admit", reply)
  end
  return action, wait, reply[3] or nil
end

function Store:learn(prefix, now, reset, limit, remaining, concurrent_limit, concurrent_remaining, answered,
                     entered)
  local reply = self:_run { "learn", self.key_prefix .. prefix, number_arg(now), number_arg(reset), number_arg(limit),
    number_arg(remaining), number_arg(concurrent_limit), number_arg(concurrent_remaining), answered and "1" or "0",
    entered and "1" or "0" }
  if reply ~= 0 then malformed("learn", reply) end
end

function Store:enter(prefix)
  local reply = self:_run { "enter", self.key_prefix .. prefix }
  if reply ~= 0 and reply ~= 1 then malformed("enter", reply) end
  return reply == 1
end

return redis_store
