-- The handler spec/hosts/budget runs in nginx (spec/hosts/budget.conf): each
-- request makes a client (the README's pattern) and calls the fake Sentry's
-- 10-per-1 s endpoint; the outcomes are counted for the suite to check.
local cjson = require "cjson"
local sentry = require "sentry"
local tokens = require "tokens"

local app = {}

local MAX_RETRY_WAIT = 2

-- `endpoint`, when given, is added to the endpoint's name (another budget).
function app.call(budget, endpoint)
  local outcomes = ngx.shared.outcomes
  local client = assert(sentry.new {
    token = tokens.user_full,
    base_url = os.getenv("SENTRY_FAKE_URL"),
    config = false,
    budget = budget,
    max_retry_wait = MAX_RETRY_WAIT,
    log = function(level, message) ngx.log(ngx.WARN, level, ": ", message) end,
  })
  local started = ngx.now()
  local path = "/fake/limited/" .. os.getenv("BUDGET_KEY") .. (endpoint and "-" .. endpoint or "") .. "/"
  local res, err = client:get(path, { query = { limit = 10, window = 1 } })
  client:close()
  ngx.update_time()
  local took = ngx.now() - started
  local outcome = res and "ok" or err.kind
  outcomes:incr(outcome, 1, 0)
  if outcome == "rate_limited" and took > (outcomes:get("slowest_refusal") or 0) then
    outcomes:set("slowest_refusal", took)
  end
  ngx.status = res and 200 or (err.kind == "rate_limited" and 429 or 502) -- luacheck: ignore 122
  ngx.say(cjson.encode { outcome = outcome, detail = err and err.detail })
end

function app.outcomes()
  local outcomes = ngx.shared.outcomes
  local all = {}
  for _, key in ipairs(outcomes:get_keys(0)) do all[key] = outcomes:get(key) end
  ngx.say(cjson.encode(all))
end

return app
