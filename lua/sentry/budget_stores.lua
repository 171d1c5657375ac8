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

-- A store from primitive operations: the rule runs here, step by step.
local function over(ops, name)
  return {
    name = name,
    admit = function(_, prefix, now, max_wait, margin) return admission.admit(ops, prefix, now, max_wait, margin) end,
    learn = function(_, ...) return admission.learn(ops, ...) end,
    enter = function(_, prefix) return admission.enter(ops, prefix) end,
  }
end

--- Entries in each of the memory store's two generations. A budget is a
-- handful of entries (its window, limit, counts), and any number of paths can
-- make budgets (a server's next links, a script), so only the most recently
-- used are kept: about 50 to 100 endpoints. Forgetting a budget costs one
-- request sent first to learn it again. (1500 paths grow the store by about
-- 50 KB at this size, 190 KB at 1024.)
budget_stores.MEMORY_GENERATION = 256

--- Process memory: budgets shared by every client of the process.
-- @treturn table a store
function budget_stores.memory()
  -- two generations, each a table of values and one of expiry times (core.monotonic)
  local values, expiry, older_values, older_expiry, count = {}, {}, {}, {}, 0
  local function insert(key, value, expires)
    if count >= budget_stores.MEMORY_GENERATION then
      older_values, older_expiry, values, expiry, count = values, expiry, {}, {}, 0
    end
    values[key], expiry[key] = value, expires
    count = count + 1
  end
  local function find(key)
    local value = values[key]
    if value == nil then
      value = older_values[key]
      if value == nil then return nil end
      local expires = older_expiry[key]
      older_values[key], older_expiry[key] = nil, nil
      insert(key, value, expires)
    end
    if expiry[key] <= core.monotonic() then
      values[key], expiry[key] = nil, nil
      return nil
    end
    return value
  end
  local function put(key, value, ttl)
    if find(key) == nil then
      insert(key, value, core.monotonic() + ttl)
    else
      values[key], expiry[key] = value, core.monotonic() + ttl
    end
  end
  return over({
    get = find,
    set = put,
    add = function(key, value, ttl)
      if find(key) ~= nil then return false end
      insert(key, value, core.monotonic() + ttl)
      return true
    end,
    incr = function(key, delta, ttl)
      local value = find(key)
      if value == nil then
        insert(key, delta, core.monotonic() + ttl)
        return delta
      end
      values[key] = value + delta
      return value + delta
    end,
    delete = function(key)
      values[key], expiry[key], older_values[key], older_expiry[key] = nil, nil, nil, nil
    end,
  }, "process memory")
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
    get = function(key) return checked(dict:get(key)) end,
    set = function(key, value, ttl) checked(dict:set(key, value, ttl)) end,
    add = function(key, value, ttl)
      local ok, err = dict:add(key, value, ttl)
      if ok then return true end
      if err == "exists" then return false end
      error(err, 0)
    end,
    incr = function(key, delta, ttl) return checked(dict:incr(key, delta, 0, ttl)) end,
    delete = function(key) dict:delete(key) end,
  }, "lua_shared_dict " .. name)
end

return budget_stores
