--- Where rate-limit budgets live. A store has four methods, each one atomic
-- step of `sentry.admission` run against the store's state:
--
--     store:admit(prefix, now, max_wait, margin) -> action, wait, reason
--     store:enter(prefix) -> may_go
--     store:learn(prefix, now, reset, limit, remaining, concurrent_limit, answered, entered)
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

--- Entries in each of the memory store's two generations: a budget is about
-- five entries, and any number of paths can make budgets (a server's next
-- links, a script), so only the most recently used are kept. Forgetting a
-- budget costs one request sent first to learn it again.
budget_stores.MEMORY_GENERATION = 1024

--- Process memory: budgets shared by every client of the process.
-- @treturn table a store
function budget_stores.memory()
  local recent, older, count = {}, {}, 0 -- key -> { value, expires (core.monotonic) }
  local function insert(key, entry)
    if count >= budget_stores.MEMORY_GENERATION then recent, older, count = {}, recent, 0 end
    recent[key] = entry
    count = count + 1
  end
  local function find(key)
    local entry = recent[key]
    if not entry then
      entry = older[key]
      if not entry then return nil end
      older[key] = nil
      insert(key, entry)
    end
    if entry[2] <= core.monotonic() then
      recent[key] = nil
      return nil
    end
    return entry
  end
  local function put(key, value, ttl)
    local entry = find(key)
    if entry then
      entry[1], entry[2] = value, core.monotonic() + ttl
    else
      insert(key, { value, core.monotonic() + ttl })
    end
  end
  return over({
    get = function(key)
      local entry = find(key)
      return entry and entry[1]
    end,
    set = put,
    add = function(key, value, ttl)
      if find(key) then return false end
      put(key, value, ttl)
      return true
    end,
    incr = function(key, delta, ttl)
      local entry = find(key)
      if not entry then
        insert(key, { delta, core.monotonic() + ttl })
        return delta
      end
      entry[1] = entry[1] + delta
      return entry[1]
    end,
    delete = function(key)
      recent[key], older[key] = nil, nil
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
