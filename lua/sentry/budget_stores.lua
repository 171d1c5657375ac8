--- Where rate-limit budgets live. A store has four methods, each one atomic
-- step of `sentry.admission` run against the store's state:
--
--     store:admit(prefix, now, max_wait, margin) -> action, wait, reason
--     store:enter(prefix) -> may_go
--     store:learn(prefix, now, reset, limit, remaining, concurrent_limit, concurrent_remaining,
--                 answered, entered)
--
-- and a `name` for messages. Any of them may raise or return `nil, message`
-- when a shared store fails; the governor then admits locally (see
-- `sentry.governor`). Three stores: process memory (`memory`),
-- `ngx.shared.DICT` (`shared_dict`) and Redis (`sentry.redis_store`).
-- @module sentry.budget_stores
local admission = require "sentry.admission"
local core = require "sentry.core_loader"

local budget_stores = {}

-- A store from primitive operations: the rule runs here, step by step;
-- `begin`, when given, runs before each step (the memory store reads its
-- clock there once).
local function over(ops, name, begin)
  begin = begin or function() end
  return {
    name = name,
    admit = function(_, prefix, now, max_wait, margin)
      begin()
      return admission.admit(ops, prefix, now, max_wait, margin)
    end,
    learn = function(_, prefix, now, reset, limit, remaining, concurrent_limit, concurrent_remaining, answered,
                     entered)
      begin()
      return admission.learn(ops, prefix, now, reset, limit, remaining, concurrent_limit, concurrent_remaining,
        answered, entered)
    end,
    enter = function(_, prefix)
      begin()
      return admission.enter(ops, prefix)
    end,
  }
end

--- Budgets in each of the memory store's two generations. A budget is a
-- handful of values (its window, limit, counts), and any number of paths can
-- make budgets (a server's next links, a script), so only the most recently
-- used are kept. Forgetting a budget costs one request sent first to learn it
-- again.
budget_stores.MEMORY_GENERATION = 64

--- Process memory: budgets shared by every client of the process.
-- @treturn table a store
function budget_stores.memory()
  -- prefix -> { values, expiry } (expiry in core.monotonic time), in two generations
  local budgets, older, count = {}, {}, 0
  local clock = 0 -- core.monotonic() at the start of the running step
  local last_prefix, last_budget -- a step asks for one budget several times
  local function budget(prefix, create)
    if prefix == last_prefix then return last_budget end
    local found = budgets[prefix]
    if found then
      last_prefix, last_budget = prefix, found
      return found
    end
    found = older[prefix]
    if found then
      older[prefix] = nil
    elseif create then
      found = { values = {}, expiry = {} }
    else
      return nil
    end
    if count >= budget_stores.MEMORY_GENERATION then older, budgets, count = budgets, {}, 0 end
    budgets[prefix], count = found, count + 1
    last_prefix, last_budget = prefix, found
    return found
  end
  local function find(prefix, name)
    local found = budget(prefix, false)
    local value = found and found.values[name]
    if value == nil then return nil, found end
    if found.expiry[name] <= clock then
      found.values[name], found.expiry[name] = nil, nil
      return nil, found
    end
    return value, found
  end
  local function put(prefix, name, value, ttl)
    local found = budget(prefix, true)
    found.values[name], found.expiry[name] = value, clock + ttl
  end
  return over({
    get = find,
    set = put,
    add = function(prefix, name, value, ttl)
      if find(prefix, name) ~= nil then return false end
      put(prefix, name, value, ttl)
      return true
    end,
    incr = function(prefix, name, delta, ttl)
      local value, found = find(prefix, name)
      if value == nil then
        put(prefix, name, delta, ttl)
        return delta
      end
      found.values[name] = value + delta -- a count is not kept alive by changes
      return value + delta
    end,
    delete = function(prefix, name)
      local found = budget(prefix, false)
      if found then found.values[name], found.expiry[name] = nil, nil end
    end,
  }, "process memory", function() clock = core.monotonic() end)
end

-- Turns a shared dict's `nil, err` into an error the governor catches.
local function checked(value, err, flags_or_forcible)
  if value == nil and err then error(err, 0) end
  return value, flags_or_forcible
end

--- An `ngx.shared.DICT` (`lua_shared_dict NAME SIZE;` in nginx.conf): budgets
-- shared by the workers of one nginx, with the dict's own atomic operations.
-- @tparam string name the dict's name
-- @treturn ?table a store
-- @treturn ?string why not (outside OpenResty, or no such dict)
function budget_stores.shared_dict(name)
  local ngx = rawget(_G, "ngx")
  local dict = ngx and ngx.shared and ngx.shared[name]
  if not dict then
    return nil, "budget.shared_dict: no lua_shared_dict named '" .. name .. "' (declare `lua_shared_dict "
      .. name .. " 1m;` in the http block of nginx.conf; shared dicts exist only inside OpenResty)"
  end
  return over({
    get = function(prefix, key) return checked(dict:get(prefix .. key)) end,
    set = function(prefix, key, value, ttl) checked(dict:set(prefix .. key, value, ttl)) end,
    add = function(prefix, key, value, ttl)
      local ok, err = dict:add(prefix .. key, value, ttl)
      if ok then return true end
      if err == "exists" then return false end
      error(err, 0)
    end,
    incr = function(prefix, key, delta, ttl) return checked(dict:incr(prefix .. key, delta, 0, ttl)) end,
    delete = function(prefix, key) dict:delete(prefix .. key) end,
  }, "lua_shared_dict " .. name)
end

return budget_stores
