--- Decides which queued exchanges may start, for drivers that run many at
-- once (the blocking batch and the event-loop driver). It keeps in flight at
-- most the caller's concurrency and, per endpoint, what the server's
-- X-Sentry-Rate-Limit-Concurrent* headers allow; an endpoint it knows nothing
-- about gets one request first, to learn its limits before the rest follow.
-- Waits (rate-limit pauses, retries) delay only their own exchange.
-- @module sentry.scheduler
local core = require "sentry.core_loader"

local Scheduler = {}
Scheduler.__index = Scheduler

--- @param client the client whose exchanges these are
-- @tparam number concurrency the most requests in flight at once
-- @tparam function on_done `function(id, res, err)` for each finished exchange
function Scheduler.new(client, concurrency, on_done)
  return setmetatable({
    client = client,
    concurrency = concurrency,
    on_done = on_done,
    waiting = {},       -- { id, exchange, ready_at } in arrival order
    running = {},       -- id -> { exchange }
    in_flight = 0,
    per_key = {},       -- endpoint key -> requests in flight
    caps = {},          -- endpoint key -> most in flight the server allows us
  }, Scheduler)
end

--- Queues an exchange under an id the engine will report back.
function Scheduler:add(id, exchange)
  self.waiting[#self.waiting + 1] = { id = id, exchange = exchange, ready_at = 0 }
end

--- Nothing queued and nothing in flight?
function Scheduler:finished()
  return self.in_flight == 0 and #self.waiting == 0
end

function Scheduler:endpoint_allows(key)
  local cap = self.caps[key]
  if cap == nil then
    -- never seen: one request first; limits come back with its response
    cap = (self.client._limits:get(key) or self.client._probed:get(key)) and math.huge or 1
  end
  return (self.per_key[key] or 0) < cap
end

--- Starts every waiting exchange that is due and allowed.
-- @param engine has `start(id, method, url, headers, body, timeout)`
-- @treturn ?number the earliest time (core.now) a waiting exchange becomes due, if any
function Scheduler:start_ready(engine)
  local now = core.now()
  local next_due
  local still_waiting = {}
  for _, entry in ipairs(self.waiting) do
    local exchange = entry.exchange
    local key = exchange.key
    local started = false
    if entry.ready_at <= now and self.in_flight < self.concurrency and self:endpoint_allows(key) then
      local pause, err = exchange:pause(self.per_key[key] or 0)
      if not pause then
        self.on_done(entry.id, nil, err)
        started = true -- finished, not waiting
      elseif pause > 0 then
        entry.ready_at = now + pause
      elseif pause < 0 then
        entry.ready_at = now -- a response in flight will tell what the new window allows
      else
        exchange:begin()
        engine:start(entry.id, exchange.method, exchange.target, exchange.headers, exchange.body, exchange.timeout)
        self.running[entry.id] = exchange
        self.in_flight = self.in_flight + 1
        self.per_key[key] = (self.per_key[key] or 0) + 1
        started = true
      end
    end
    if not started then
      still_waiting[#still_waiting + 1] = entry
      if entry.ready_at > now and (not next_due or entry.ready_at < next_due) then next_due = entry.ready_at end
    end
  end
  self.waiting = still_waiting
  return next_due
end

--- Learns what the server allows from a response's concurrency headers: at the
-- time it answered, `remaining` more were allowed beyond the `ours` we had in flight.
function Scheduler:learn(key, rate_limit, ours)
  self.client._probed:set(key, true)
  if not rate_limit then return end
  local cap = rate_limit.concurrent_limit or math.huge
  if rate_limit.concurrent_remaining then cap = math.min(cap, ours + rate_limit.concurrent_remaining) end
  self.caps[key] = math.max(cap, 1)
end

--- Takes one completion from the engine: `{ id, res }` or `{ id, message, code }`.
function Scheduler:complete(completion)
  local id = completion.id
  local exchange = self.running[id]
  self.running[id] = nil
  local key = exchange.key
  local ours = self.per_key[key]
  self.in_flight = self.in_flight - 1
  self.per_key[key] = ours - 1
  if completion.res then self:learn(key, completion.res.rate_limit, ours) end
  local action, wait_or_res, err = exchange:settle(completion.res, completion.message, completion.code)
  if action == "retry" then
    self.waiting[#self.waiting + 1] = { id = id, exchange = exchange, ready_at = core.now() + wait_or_res }
  else
    self.on_done(id, wait_or_res, err)
  end
end

return Scheduler
