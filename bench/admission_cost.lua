-- What one request's admission costs in a budget store (admit, enter, learn),
-- with a window that always has room: the bookkeeping alone, never a wait.
-- Used by bench/admission.lua (memory, Redis) and bench/handlers.lua (a
-- lua_shared_dict, inside the benchmark nginx).
local governor = require "sentry.governor"
local core = require "sentry.core"

local admission_cost = {}

local TOKEN = "sntryu_" .. string.rep("0123456789abcdef", 4)

--- @return CPU and wall microseconds per request
function admission_cost.measure(budget, count)
  local budgets = assert(governor.for_token(TOKEN, budget))
  local policy = { max_retry_wait = 60, reset_margin = 0.1 }
  local key = "GET /api/0/bench/admission/" .. tostring(core.now())
  local res = { rate_limit = { limit = 1e9, remaining = 1e9, reset = math.floor(core.now()) + 3600,
    concurrent_limit = 1e6 } }
  local function one()
    local decision = budgets:admit(key, policy)
    assert(decision.action == "send", decision.action)
    assert(budgets:enter(key))
    budgets:learn(key, res, true)
  end
  budgets:admit(key, policy) -- the probe
  budgets:learn(key, res, false)
  for _ = 1, math.min(count, 100) do one() end
  local cpu, wall = os.clock(), core.monotonic()
  for _ = 1, count do one() end
  return (os.clock() - cpu) / count * 1e6, (core.monotonic() - wall) / count * 1e6
end

return admission_cost
