--- The admission rule of a rate-limit budget, written once over a store's
-- primitive operations: the process-memory and `ngx.shared.DICT` stores run
-- it in Lua, the Redis store runs this same file inside Redis as a script (so
-- it is plain Lua 5.1 with no `require`).
--
-- A budget's state, all whole numbers in the server's clock (seconds):
-- `end` (the latest window end a response reported, its Reset), `limit`,
-- `span` (the window length, once two window ends were seen), `n:<end>`
-- (requests admitted or counted in the window ending then), `after:<end>`
-- (requests admitted in the window starting then, while its end is unknown),
-- `probe` (the one request sent before anything is known), `open` (the
-- endpoint sends no limits), `cap` and `flight` (concurrency).
--
-- `ops` has `get(prefix, name)` -> number or nil, `set(prefix, name, value,
-- ttl)`, `add(prefix, name, value, ttl)` -> whether it was absent,
-- `incr(prefix, name, delta, ttl)` -> the new value (from 0 when absent, and
-- then for `ttl` seconds: a count is not kept alive by changes),
-- `delete(prefix, name)`; each atomic. A value's key is `prefix .. name` (the
-- memory store keeps a table per prefix instead of joining them).
-- @module sentry.admission
local admission = {}

local floor, max, min = math.floor, math.max, math.min

--- Seconds a probe may stay unanswered before another request probes.
admission.PROBE_TTL = 30
--- Seconds a budget's keys live without being written.
admission.TTL = 600
--- Seconds the count of requests in flight lives: a request that never said
-- it ended (its process died, or a store outage hid its end) is forgotten then.
admission.FLIGHT_TTL = 60
--- Seconds between two looks while a probe or the concurrency holds a request back.
admission.POLL = 0.02

-- The last name made: requests in one window ask for the same one.
local last_end, last_name

local function window_name(window_end)
  if window_end ~= last_end then last_end, last_name = window_end, "n:" .. string.format("%d", window_end) end
  return last_name
end

-- Raises a counter to at least `value` (counts only grow, so a race leaves it high: the safe side).
local function raise(ops, prefix, name, value)
  local current = ops.get(prefix, name) or 0
  if current < value then ops.incr(prefix, name, value - current, admission.TTL) end
end

-- A slot in the window [start, start + span): the k-th of `limit`, spread
-- over the window with `margin` kept free at both ends for clock and network jitter.
local function slot_time(start, span, k, limit, margin)
  local usable = max(span - 2 * margin, span / 2)
  return start + margin + (k - 1) * usable / limit
end

-- Counts one request in a window of `limit`: its place (1..limit), or nil
-- when the window is full. A count above the limit is taken back at once: it
-- would hide a place given back later.
local function take(ops, prefix, name, limit)
  local k = ops.incr(prefix, name, 1, admission.TTL)
  if k <= limit then return k end
  ops.incr(prefix, name, -1, admission.TTL)
  return nil
end

-- Takes slot k of a later window, or gives it back when its time is too far.
local function book(ops, prefix, name, now, start, span, limit, margin, max_wait)
  local k = take(ops, prefix, name, limit)
  if not k then return nil end
  local wait = max(slot_time(start, span, k, limit, margin) - now, 0)
  if wait > max_wait then
    ops.incr(prefix, name, -1, admission.TTL)
    return "refuse", wait
  end
  if wait == 0 then return "send", 0 end
  return "reserved", wait
end

--- One admission decision.
-- @param ops the store's operations
-- @tparam string prefix the budget's key prefix
-- @tparam number now the server's clock
-- @tparam number max_wait the longest wait a caller accepts (`max_retry_wait`)
-- @tparam number margin seconds kept free at a window's edges (`reset_margin`)
-- @treturn string `"send"` (go now), `"reserved"` (a slot is held: send after
--   `wait` without asking again), `"ask_again"` (after `wait`) or `"refuse"`
--   (the wait would pass max_wait)
-- @treturn number wait in seconds
-- @treturn string why: `"window"`, `"probe"` or `"stale"` (for the caller's hooks)
function admission.admit(ops, prefix, now, max_wait, margin)
  if ops.get(prefix, "open") then return "send", 0, "open" end
  local window_end, limit = ops.get(prefix, "end"), ops.get(prefix, "limit")
  local span = ops.get(prefix, "span")
  if not window_end or not limit or now >= window_end + (span or 1) then
    -- nothing known, or nothing heard for a whole window: one request goes first
    if ops.add(prefix, "probe", 1, admission.PROBE_TTL) then return "send", 0, "probe" end
    return "ask_again", admission.POLL, "probe"
  end
  if now < window_end - margin then
    if take(ops, prefix, window_name(window_end), limit) then return "send", 0, "window" end
  elseif now < window_end + margin then
    -- within margin of the window's end the server may count the request in
    -- this window or the next: with a place in both it goes now (waiting for
    -- a slot of the next window held it up to 2 × margin and more)
    local next_name = span and window_name(window_end + span) or "after:" .. string.format("%d", window_end)
    if take(ops, prefix, window_name(window_end), limit) then
      if take(ops, prefix, next_name, limit) then return "send", 0, "window" end
      ops.incr(prefix, window_name(window_end), -1, admission.TTL)
    end
  end
  if not span then
    -- only the next window's start is known: book it; later ones wait for its end
    local action, wait = book(ops, prefix, "after:" .. string.format("%d", window_end), now, window_end, 1,
      limit, margin, max_wait)
    if action then return action, wait, "window" end
    local until_known = max(window_end - now, 0) + margin + admission.POLL
    if until_known > max_wait then return "refuse", until_known, "window" end
    return "ask_again", until_known, "window"
  end
  local windows = floor(max_wait / span) + 2
  for j = 1, windows do
    local start = window_end + (j - 1) * span
    if start - now > max_wait then return "refuse", start - now, "window" end
    local action, wait = book(ops, prefix, window_name(start + span), now, start, span, limit, margin, max_wait)
    if action then return action, wait, "window" end
  end
  return "refuse", windows * span, "window"
end

--- Learns from one response (or from a request that got none), and gives
-- back the place in flight the request held.
-- @param ops
-- @tparam string prefix
-- @tparam number now the server's clock
-- @tparam ?number reset the window's end (server clock), from X-Sentry-Rate-Limit-Reset;
--   one more than a second past says nothing about the window now, as if absent
-- @tparam ?number limit
-- @tparam ?number remaining
-- @tparam ?number concurrent_limit
-- @tparam ?number concurrent_remaining how many more the server allowed in
--   flight when it answered (beyond those in flight then, this one included)
-- @tparam boolean answered whether a response came (a failed transfer only frees the probe)
-- @tparam boolean entered whether the request held a place in flight (see `enter`)
function admission.learn(ops, prefix, now, reset, limit, remaining, concurrent_limit, concurrent_remaining, answered,
                         entered)
  ops.delete(prefix, "probe")
  if answered and (concurrent_limit or concurrent_remaining) then
    -- callers outside this budget may hold some of the server's places too
    local cap = concurrent_limit or math.huge
    if concurrent_remaining then cap = min(cap, (ops.get(prefix, "flight") or 0) + concurrent_remaining) end
    ops.set(prefix, "cap", max(cap, 1), admission.TTL)
  end
  -- below 0 only when the count expired under requests still in flight: start again from 0
  if entered and ops.incr(prefix, "flight", -1, admission.FLIGHT_TTL) < 0 then
    ops.set(prefix, "flight", 0, admission.FLIGHT_TTL)
  end
  if not answered then return end
  if not reset or not limit or reset < now - 1 then
    ops.set(prefix, "open", 1, admission.TTL)
    return
  end
  reset = floor(reset)
  ops.delete(prefix, "open")
  ops.set(prefix, "limit", limit, admission.TTL)
  local known_end = ops.get(prefix, "end")
  if not known_end or reset > known_end then
    ops.set(prefix, "end", reset, admission.TTL)
    if known_end then
      -- window ends are whole multiples of the window apart: the least gap is the window
      local span = ops.get(prefix, "span")
      ops.set(prefix, "span", min(span or math.huge, reset - known_end), admission.TTL)
      raise(ops, prefix, window_name(reset), ops.get(prefix, "after:" .. string.format("%d", known_end)) or 0)
    end
  end
  if remaining then raise(ops, prefix, window_name(reset), limit - remaining) end
end

--- Takes a place among the requests in flight (counted always, so the
-- count is right when a response first tells the server's limit).
-- @treturn boolean whether the request may go now (then it holds a place:
--   `learn` gives it back)
function admission.enter(ops, prefix)
  local cap = ops.get(prefix, "cap")
  if ops.incr(prefix, "flight", 1, admission.FLIGHT_TTL) <= (cap or math.huge) then return true end
  ops.incr(prefix, "flight", -1, admission.FLIGHT_TTL)
  return false
end

return admission
