--- Decides which queued exchanges may start, for drivers that run many at
-- once (the blocking batch and the event-loop driver). It keeps in flight at
-- most the caller's concurrency; each exchange also asks its budget's
-- governor (`sentry.governor`: the endpoint's window, its concurrency, one
-- request first to an endpoint nothing is known about). Waits (rate-limit
-- pauses, retries) delay only their own exchange.
-- @module sentry.scheduler
local core = require "sentry.core_loader"
local errors = require "sentry.errors"

local Scheduler = {}
Scheduler.__index = Scheduler

--- @tparam number concurrency the most requests in flight at once
-- @tparam function on_done `function(id, res, err)` for each finished exchange
-- @tparam[opt] boolean contain when true, an error raised while handling one
--   exchange (a hook, a request the transport refuses) ends that exchange with
--   a "lua_error" err instead of propagating: an event loop must never see it
function Scheduler.new(concurrency, on_done, contain)
  return setmetatable({
    concurrency = concurrency,
    on_done = on_done,
    contain = contain,
    waiting = {},       -- { id, exchange, ready_at, group } in arrival order
    running = {},       -- id -> its waiting entry
    in_flight = 0,
  }, Scheduler)
end

--- Queues an exchange under an id the engine will report back.
-- @param id
-- @param exchange
-- @tparam[opt] table group `{ limit = n, in_flight = 0 }` shared by exchanges
--   that may have at most `limit` in flight together (one async batch)
function Scheduler:add(id, exchange, group)
  self.waiting[#self.waiting + 1] = { id = id, exchange = exchange, ready_at = 0, group = group }
end

-- Runs `step(self, ...)`; with `contain`, what it raises ends exchange `id` instead.
local function guarded(self, id, exchange, step, ...)
  if not self.contain then return step(self, ...) end
  local ok, problem = pcall(step, self, ...)
  if ok then return problem end
  self.on_done(id, nil, errors.new { kind = "lua_error", method = exchange.method, url = exchange.target,
    detail = "raised while handling this request (a hook, or the request itself): " .. tostring(problem) })
  return "finished"
end

--- Nothing queued and nothing in flight?
function Scheduler:finished()
  return self.in_flight == 0 and #self.waiting == 0
end

-- Starts or delays one due, allowed entry; "finished" when it will not wait any more.
local function try_start(self, entry, engine, now)
  local exchange = entry.exchange
  local pause = exchange:pause()
  if pause.action == "fail" then
    self.on_done(entry.id, nil, pause.err)
    return "finished"
  elseif pause.action == "wait" then
    entry.ready_at, entry.recheck = now + pause.wait, pause.recheck
  else
    exchange:start_on(engine, entry.id)
    self.running[entry.id] = entry
    self.in_flight = self.in_flight + 1
    if entry.group then entry.group.in_flight = entry.group.in_flight + 1 end
    return "finished"
  end
end

--- Starts every waiting exchange that is due and allowed.
-- @param engine has `start(id, method, url, headers, body, timeout)`
-- @treturn ?number the earliest time (core.now) a waiting exchange becomes due, if any
function Scheduler:start_ready(engine)
  local now = core.now()
  local next_due
  local still_waiting = {}
  local waiting = self.waiting
  self.waiting = still_waiting -- exchanges added meanwhile (from a hook) queue here
  for _, entry in ipairs(waiting) do
    local group = entry.group
    local started = false
    if entry.ready_at <= now and self.in_flight < self.concurrency
        and (not group or group.in_flight < group.limit) then
      started = guarded(self, entry.id, entry.exchange, try_start, entry, engine, now) == "finished"
    end
    if not started then
      still_waiting[#still_waiting + 1] = entry
      if entry.ready_at > now and (not next_due or entry.ready_at < next_due) then next_due = entry.ready_at end
    end
  end
  return next_due
end

local function settle(self, entry, completion)
  local outcome = entry.exchange:settle(completion.res, completion.message, completion.code)
  if outcome.action == "retry" then
    -- a backoff or a server's wait: no response may cut it short
    entry.ready_at, entry.recheck = core.now() + outcome.wait, nil
    self.waiting[#self.waiting + 1] = entry
  else
    self.on_done(entry.id, outcome.res, outcome.err)
  end
end

-- Takes exchange `id` off the running ones.
local function stop_running(self, id)
  local entry = self.running[id]
  self.running[id], self.in_flight = nil, self.in_flight - 1
  if entry.group then entry.group.in_flight = entry.group.in_flight - 1 end
  return entry
end

--- Drops exchange `id`, waiting or in flight (then the engine stops its
-- transfer); `on_done` is not called for it.
-- @treturn boolean whether it was still there to drop
function Scheduler:cancel(id, engine)
  for index, entry in ipairs(self.waiting) do
    if entry.id == id then
      table.remove(self.waiting, index)
      return true
    end
  end
  if not self.running[id] then return false end
  engine:cancel(id)
  stop_running(self, id).exchange:release(nil)
  return true
end

--- Forgets every exchange, giving back the places in flight of those under
-- way (their transfers end with the engine; `on_done` is not called).
function Scheduler:abandon()
  for id, entry in pairs(self.running) do
    self.running[id] = nil
    entry.exchange:release(nil)
  end
  self.waiting, self.in_flight = {}, 0
end

-- A response may have opened the way for waiters that poll: the endpoint's
-- first answer for all of them (as many as may start), a freed place for one.
-- They are asked again at the next start_ready instead of a poll later.
local function wake_pollers(self)
  local free, woke_one = self.concurrency - self.in_flight, false
  for _, entry in ipairs(self.waiting) do
    if free <= 0 then return end
    local recheck = entry.recheck
    if recheck == "probe" or (recheck == "one" and not woke_one) then
      entry.ready_at, entry.recheck = 0, nil
      free, woke_one = free - 1, woke_one or recheck == "one"
    end
  end
end

--- Takes one completion from the engine: `{ id, res }` or `{ id, message, code }`.
function Scheduler:complete(completion)
  local id = completion.id
  local entry = stop_running(self, id)
  guarded(self, id, entry.exchange, settle, entry, completion)
  wake_pollers(self)
end

return Scheduler
