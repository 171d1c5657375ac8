--- One rate-limit budget per (token, endpoint), shared by every caller.
--
-- Before each attempt an exchange asks `admit` for a decision; after it,
-- `learn` takes what the response said (the X-Sentry-Rate-Limit-* headers).
-- Governors live in a process-wide registry keyed by the token's SHA-256 and
-- the store, so clients made per request share one budget; the budget's state
-- lives in the store (`sentry.budget_stores`): process memory, an
-- `ngx.shared.DICT` shared by nginx workers, or Redis shared by hosts. The
-- rule itself is `sentry.admission`. When a shared store fails, the governor
-- admits with a budget in its own memory, warns once, and goes back to the
-- store when it answers again: a store outage never fails a request.
-- @module sentry.governor
local budget_stores = require "sentry.budget_stores"
local core = require "sentry.core_loader"
local endpoint_memory = require "sentry.endpoint_memory"

local governor = {}

local Governor = {}
Governor.__index = Governor

--- Seconds between tries of a failed shared store.
governor.STORE_RETRY = 1

-- Stores by identity, one each per process: every token's budgets share it
-- (keys carry the token's digest), so many tokens cost one connection.
local stores = {}

-- token digest .. store identity -> Governor. Weak: a governor holds only
-- this process's view (clock skew, the latest headers), the budget itself is
-- in the store, so one no client uses can go; the most recent stay for
-- clients made per request.
local governors = setmetatable({}, { __mode = "v" })
local recent, recent_next = {}, 1 -- luacheck: ignore 241 (only written: it keeps governors alive)

--- Governors kept alive without a client, the most recently asked for.
governor.KEEP_RECENT = 64

-- A name for the store an option asks for: what makes two stores different
-- (the password only as a digest: the name is a table key, never printed).
local function store_id(budget)
  if budget == nil then return "memory" end
  if budget.shared_dict then return "dict:" .. budget.shared_dict end
  local redis = budget.redis
  return table.concat({ "redis", redis.host, tostring(redis.port or 6379), tostring(redis.database),
    tostring(redis.prefix), tostring(redis.timeout),
    redis.password and core.sha256_hex(redis.password) or "" }, "\0")
end

-- The store an option asks for.
local function open_store(budget)
  if budget == nil then return budget_stores.memory() end
  if budget.shared_dict then return budget_stores.shared_dict(budget.shared_dict) end
  return require("sentry.redis_store").new(budget.redis)
end

-- The store and its outage record (shared by every governor on it).
local function store_for(budget)
  local id = store_id(budget)
  local entry = stores[id]
  if not entry then
    local store, problem = open_store(budget)
    if not store then return nil, problem end
    -- failed_until: while set, the store is not asked (core.monotonic); warned: this outage was reported
    entry = { store = store, outage = { failed_until = nil, warned = false } }
    stores[id] = entry
  end
  return entry, id
end

--- The governor of a token's budgets in a store.
-- @tparam string token the token (only its SHA-256 is kept)
-- @tparam[opt] table budget the `budget` option: nil (process memory),
--   `{ shared_dict = name }` or `{ redis = { host, port, ... } }`
-- @treturn ?Governor
-- @treturn ?string why the store cannot be used
function governor.for_token(token, budget)
  local digest = core.sha256_hex(token)
  local entry, kind = store_for(budget)
  if not entry then return nil, kind end
  local id = digest .. " " .. kind
  local found = governors[id]
  if not found then
    found = setmetatable({
      prefix = "sentry:" .. digest:sub(1, 16) .. ":", -- 64 bits tell tokens apart
      store = entry.store,
      outage = entry.outage,
      -- while a shared store fails: this process's memory, keyed the same way
      fallback = kind ~= "memory" and store_for(nil).store or nil,
      skew = 0,           -- how far the server's clock is ahead of ours
      last = endpoint_memory.new(), -- endpoint key -> the latest rate_limit a response reported
    }, Governor)
    governors[id] = found
  end
  recent[recent_next] = found
  recent_next = recent_next % governor.KEEP_RECENT + 1
  return found
end

local unpack = table.unpack or unpack

-- A store step failed when it raised or returned `nil, message`.
local function failed(results)
  return not results[1] or (results[2] == nil and results[3] ~= nil)
end

-- Runs one store step; on failure, the same step on the local fallback.
function Governor:_call(step, log, ...)
  local store, outage = self.store, self.outage
  if self.fallback then
    if outage.failed_until and core.monotonic() < outage.failed_until then
      store = self.fallback
    else
      local results = { pcall(store[step], store, ...) }
      if not failed(results) then
        if outage.failed_until then
          outage.failed_until, outage.warned = nil, false -- the next outage warns again
          if log then log("info", "the rate-limit store (" .. store.name .. ") answers again: budgets are shared again") end
        end
        return unpack(results, 2, 4)
      end
      outage.failed_until = core.monotonic() + governor.STORE_RETRY
      if not outage.warned and log then
        outage.warned = true
        log("warn", "the rate-limit store (" .. store.name .. ") failed (" .. tostring(results[3] or results[2])
          .. "): admitting requests with this process's own budget until it answers again")
      end
      store = self.fallback
    end
  end
  return store[step](store, ...)
end

local function budget_prefix(self, key)
  return self.prefix .. key .. ":"
end

--- Asks whether a request to an endpoint may go.
-- @tparam string key the endpoint key (method and template or path)
-- @tparam table policy `{ max_retry_wait, reset_margin }`
-- @tparam[opt] function log `function(level, message)` for the store's warnings
-- @treturn table a decision: `{ action = "send" }`, `{ action = "reserved", wait = s }`
--   (a slot is held: send after the wait without asking again), `{ action =
--   "ask_again", wait = s, reason = ... }` or `{ action = "refuse", wait = s }`
function Governor:admit(key, policy, log)
  local now = core.now() + self.skew
  local action, wait, reason = self:_call("admit", log, budget_prefix(self, key), now, policy.max_retry_wait,
    policy.reset_margin)
  return { action = action, wait = tonumber(wait) or 0, reason = reason }
end

--- Takes a place in flight, within the server's concurrency limit.
-- @treturn boolean whether the request may go now (then `learn` gives the place back)
function Governor:enter(key, log)
  return self:_call("enter", log, budget_prefix(self, key))
end

--- Learns from an attempt: `res` (a response, with `rate_limit` and `clock_skew`)
-- or nil when the transfer failed; `entered`: the attempt held
-- a place in flight (`enter`), given back now; `pinned` (a catalogue
-- endpoint) keeps its latest state for good.
function Governor:learn(key, res, entered, log, pinned)
  local rate_limit = res and res.rate_limit
  if res and res.clock_skew then self.skew = res.clock_skew end
  if rate_limit then self.last:set(key, rate_limit, pinned) end
  rate_limit = rate_limit or {}
  self:_call("learn", log, budget_prefix(self, key), core.now() + self.skew, rate_limit.reset, rate_limit.limit,
    rate_limit.remaining, rate_limit.concurrent_limit, rate_limit.concurrent_remaining, res ~= nil, entered)
end

--- The latest rate-limit state a response reported for an endpoint, in this process.
function Governor:last_rate_limit(key)
  return self.last:get(key)
end

return governor
