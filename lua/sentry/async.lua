--- Non-blocking requests on an event loop (libuv through luv: Neovim's
-- `vim.uv`/`vim.loop`, or `require "luv"`). libcurl's multi engine runs in
-- "socket" mode: the loop watches the sockets libcurl names and calls back
-- when they are ready, and timers stand in for libcurl's timeouts and for
-- rate-limit and retry waits. Nothing blocks the loop.
--
--     client:request_async("GET", "/organizations/{org}/", nil, function(res, err) ... end)
--     client:batch_async(requests, { concurrency = 10 }, function(results) ... end)
--
-- In Neovim, callbacks run through `vim.schedule`, so they may call any API.
-- @module sentry.async
local core = require "sentry.core_loader"
local batch = require "sentry.batch"
local DEFAULTS = require("sentry.config").DEFAULTS
local Scheduler = require "sentry.scheduler"
local errors = require "sentry.errors"
local token = require "sentry.token"

local async = {}

local Driver = {}
Driver.__index = Driver

-- The loop holds our handles, and their callbacks, until they are closed: they
-- reach the driver through a weak table, so an idle client can be collected.
-- A driver with requests pending is kept here, whatever the caller drops.
local WEAK = { __mode = "v" }
local busy_drivers = {} -- luacheck: ignore (only holds them)

-- When a Lua state closes, finalizers run in the reverse order objects were
-- marked for them: luv's handles (which luv then frees) before the client that
-- made them. A sentinel marked after each of our handles finalizes before
-- them, and so tells the client's finalizer the handles are gone. Replaced
-- sentinels are collected along the way and say nothing.
local state_closing = false
local sentinel
local function mark_sentinel()
  local this = {}
  sentinel = setmetatable(this, { __gc = function(self) if rawequal(self, sentinel) then state_closing = true end end })
end

local function default_loop()
  local vim = rawget(_G, "vim")
  if vim then return vim.uv or vim.loop end
  local ok, luv = pcall(require, "luv")
  if ok then return luv end
  return nil
end

local function default_schedule()
  local vim = rawget(_G, "vim")
  if vim and vim.schedule then return vim.schedule end
  return function(fn) fn() end
end

--- Makes a driver for a client.
-- @param client
-- @tparam[opt] table options `{ loop = luv, schedule = function(fn), concurrency = 10 }`
-- @return the driver
function async.new(client, options)
  options = options or {}
  local loop = options.loop or default_loop()
  if not loop then
    error("sentry.async needs an event loop: run inside Neovim, install luv, or pass { loop = ... }", 3)
  end
  local driver = setmetatable({
    client = client,
    loop = loop,
    schedule = options.schedule or default_schedule(),
    engine = client._transport:event_engine(),
    polls = {},
    callbacks = {},
    ready = {},         -- finished requests whose callbacks have yet to run
    next_id = 0,
  }, Driver)
  driver.scheduler = Scheduler.new(options.concurrency or DEFAULTS.concurrency, function(id, res, err)
    driver:deliver(id, res, err)
  end, true)
  driver.curl_timer = loop.new_timer()
  driver.due_timer = loop.new_timer()
  mark_sentinel()
  local ref = setmetatable({ driver }, WEAK)
  driver.on_timeout = function() if ref[1] then ref[1]:act(nil) end end
  driver.on_due = function() if ref[1] then ref[1]:pump() end end
  driver.on_ready = function(fd, err, ready) if ref[1] then ref[1]:act(fd, err and "e" or ready) end end
  return driver
end

--- Queues a finished request's callback; they run once the engine's work is
-- done (`flush`), so a callback may start requests or close the client.
function Driver:deliver(id, res, err)
  local callback = self.callbacks[id]
  self.callbacks[id] = nil
  if callback then self.ready[#self.ready + 1] = { callback, res, err } end
end

-- Runs a callback; what it raises goes to the client's log, never to the loop
-- (luv ends the process on an error it catches).
local function run_callback(log, callback, res, err)
  local ok, problem = xpcall(function() callback(res, err) end, debug.traceback)
  if not ok then log("error", "an async callback raised: " .. token.scrub(tostring(problem))) end
end

--- Runs the callbacks of finished requests (none once the driver is closed).
function Driver:flush()
  while self.engine and #self.ready > 0 do
    local ready = self.ready
    self.ready = {}
    local log = self.client._log
    for _, done in ipairs(ready) do
      self.schedule(function() run_callback(log, done[1], done[2], done[3]) end)
      if not self.engine then break end
    end
  end
  if next(self.callbacks) == nil then busy_drivers[self] = nil end
end

--- Queues an exchange; `callback(res, err)` runs when it is done.
-- @param exchange the prepared request
-- @tparam function callback
-- @tparam[opt] table group the batch it belongs to (see `sentry.scheduler`)
-- @return the request's id in this driver
function Driver:submit(exchange, callback, group)
  self.next_id = self.next_id + 1
  local id = self.next_id
  self.callbacks[id] = callback
  busy_drivers[self] = true
  self.scheduler:add(id, exchange, group)
  self:pump()
  return id
end

--- Stops request `id`, waiting or in flight (its transfer is taken off the
-- connection, which libcurl then closes); its callback runs once, with an
-- error of kind "cancelled".
-- @treturn boolean false when it had finished already (its callback ran or is due)
function Driver:cancel(id)
  if not self.engine or not self.callbacks[id] then return false end
  if not self.scheduler:cancel(id, self.engine) then return false end
  self:deliver(id, nil, errors.new { kind = "cancelled", detail = "cancelled before it finished" })
  self:pump()
  return true
end

--- What `request_async` and `batch_async` return: `handle:cancel()`.
local Pending = {}
Pending.__index = Pending

--- Cancels what is still pending; the callbacks of cancelled requests get an
-- error of kind "cancelled".
-- @treturn boolean whether anything was still pending
function Pending:cancel()
  local any = false
  for _, id in ipairs(self.ids) do
    if self.driver:cancel(id) then any = true end
  end
  return any
end

local function pending(driver, ids)
  return setmetatable({ driver = driver, ids = ids }, Pending)
end

-- At least 1 ms: libuv runs a timer re-armed to 0 ms from a timer callback
-- again in the same pass, which never ends when libcurl keeps asking for 0.
local function arm(timer, seconds, action)
  timer:stop()
  if seconds then timer:start(math.max(math.floor(seconds * 1000 + 0.5), 1), 0, action) end
end

--- Starts what may start, tells the loop what to watch, then runs callbacks.
function Driver:pump()
  if not self.engine then return end
  local next_due = self.scheduler:start_ready(self.engine)
  self:watch_sockets()
  arm(self.curl_timer, self.engine:timeout(), self.on_timeout)
  arm(self.due_timer, next_due and math.max(next_due - core.now(), 0), self.on_due)
  self:flush()
  if self.engine and next(self.callbacks) == nil and self.scheduler:finished() then
    -- Nothing of ours is pending: a timer libcurl still asks for (its own
    -- upkeep) must not keep the caller's loop running; a new request re-arms.
    self.curl_timer:stop()
    self.due_timer:stop()
  end
end

function Driver:watch_sockets()
  for _, change in ipairs(self.engine:sockets()) do
    local fd, events = change[1], change[2]
    local poll = self.polls[fd]
    if events == "remove" or events == "none" then
      -- stopped, not closed: libuv closes handles later, and a kept-alive
      -- connection's fd comes back for the next request; one handle per fd
      if poll then poll:stop() end
    else
      if not poll then
        poll = self.loop.new_poll(fd)
        self.polls[fd] = poll
        mark_sentinel()
      end
      local on_ready = self.on_ready
      poll:start(events, function(err, ready) on_ready(fd, err, ready) end)
    end
  end
end

local function act(self, fd, events)
  self.engine:socket_action(fd, events)
  for _, completion in ipairs(self.engine:completed()) do self.scheduler:complete(completion) end
  self:pump()
end

--- A socket is ready (or, with fd nil, libcurl's timer fired). If libcurl or
-- libuv fails here, every pending request ends with that error and the driver
-- starts over with a new engine: the loop itself never sees it.
function Driver:act(fd, events)
  if not self.engine then return end
  local ok, problem = pcall(act, self, fd, events)
  if ok or not self.engine then return end
  local err = errors.new { kind = "lua_error", detail = "the event-loop driver failed: " .. tostring(problem) }
  for id in pairs(self.callbacks) do self:deliver(id, nil, err) end
  for _, poll in pairs(self.polls) do poll:stop() end
  self.engine:close()
  self.engine = self.client._transport:event_engine()
  local old = self.scheduler
  old:abandon()
  self.scheduler = Scheduler.new(old.concurrency, old.on_done, true)
  self:flush()
end

--- Stops watching and frees the engine; pending callbacks never run.
-- @tparam[opt] boolean collected true from the client's finalizer. The loop's
--   handles are then only stopped: closing one needs the loop to run once more,
--   and luv crashes when a Lua state closes with a handle half closed (luv
--   closes them itself when the loop ends). While the Lua state closes they are
--   left alone: luv has freed them already.
function Driver:close(collected)
  busy_drivers[self] = nil
  if not (collected and state_closing) then
    for fd, poll in pairs(self.polls) do
      poll:stop()
      if not collected then poll:close() end
      self.polls[fd] = nil
    end
    for _, timer in ipairs { self.curl_timer, self.due_timer } do
      timer:stop()
      if not collected then timer:close() end
    end
  end
  if self.engine then self.engine:close() end
  self.engine = nil
  if not (collected and state_closing) then self.scheduler:abandon() end
  self.ready, self.callbacks = {}, {}
end

--- `client:request_async(method, path, opts, callback)`: like `request`, but
-- returns at once; `callback(res, err)` runs when the request is done.
function async.request(client, method, path, opts, callback)
  if type(callback) ~= "function" then error("bad argument #4 to 'request_async' (a callback expected)", 3) end
  local exchange, err = client:_prepare(method, path, opts, 4)
  local driver = client:async()
  if not exchange then
    driver.schedule(function() callback(nil, err) end)
    return pending(driver, {})
  end
  return pending(driver, { driver:submit(exchange, callback) })
end

--- `client:batch_async(requests, opts, callback)`: like `batch`, but returns at
-- once; `callback(results)` gets one `{ res, err }` per request, in input order.
function async.batch(client, requests, opts, callback)
  if type(callback) ~= "function" then error("bad argument #3 to 'batch_async' (a callback expected)", 3) end
  local driver = client:async()
  -- this batch's own limit: the driver's other requests keep theirs
  local group = { limit = batch.check_options(opts), in_flight = 0 }
  local results, left = {}, #requests
  local ids = {}
  if left == 0 then
    driver.schedule(function() callback(results) end)
    return pending(driver, ids)
  end
  local function done(index, res, err)
    results[index] = { res = res, err = err }
    left = left - 1
    if left == 0 then callback(results) end
  end
  for index, request in ipairs(requests) do
    local method, path, request_opts = batch.normalize(request, index)
    local exchange, err = client:_prepare(method, path, request_opts, 5)
    if exchange then
      ids[#ids + 1] = driver:submit(exchange, function(res, request_err) done(index, res, request_err) end, group)
    else
      driver.schedule(function() done(index, nil, err) end)
    end
  end
  return pending(driver, ids)
end

return async
