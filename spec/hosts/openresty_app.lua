-- The application spec/hosts/openresty runs in nginx (spec/hosts/openresty.conf):
-- handlers that use sentry-lua the way an OpenResty gateway would. Each answers
-- with JSON for the suite to check.
local cjson = require "cjson"
local tokens = require "tokens"

local app = {}

--- init_by_lua: load the module in the master process, before the worker forks.
function app.init()
  app.sentry = require "sentry"
  app.loaded_in_init = true
end

-- A client per request; no `sleep` option, so the default one is on trial.
local function new_client(overrides)
  local opts = {
    token = tokens.user_full,
    base_url = os.getenv("SENTRY_FAKE_URL"),
    org = "acme",
    config = false,
    log = function(level, message) ngx.log(ngx.WARN, level, ": ", message) end,
  }
  for key, value in pairs(overrides or {}) do opts[key] = value end
  return assert(app.sentry.new(opts))
end

--- init_by_lua of openresty_fork.conf: one client made in the master, with a
-- kept-alive connection opened there (by libcurl: init has no cosockets), then
-- inherited by every forked worker.
function app.init_shared_client()
  app.init()
  app.shared = new_client { transport = "curl", timeout = 5 }
  assert(app.shared:get("/fake/echo/master/"))
end

--- A request through the inherited client: does this worker get its own
-- response? Each asks for a different delay, which the answer repeats; the
-- delay keeps several workers' requests on the wire at once.
function app.through_shared_client()
  local ms = 20 + tonumber(ngx.var.arg_i)
  local res, err = app.shared:get("/fake/slow/", { query = { ms = ms } })
  ngx.say(cjson.encode { own = res ~= nil and res.body.slept_ms == ms, worker = ngx.worker.pid(),
    error = err and tostring(err) })
end

local function now()
  ngx.update_time()
  return ngx.now()
end

-- Requests a fake endpoint that answers 429 with Retry-After (default 1 s) once, then 200.
local function rate_limited_request(key, retry_after)
  local client = new_client()
  local started = now()
  local res, err = client:get("/fake/flaky/{key}/", {
    params = { key = key }, query = { fail = 1, status = 429, retry_after = retry_after or 1 } })
  local outcome = {
    status = res and res.status, attempts = res and res.attempts or err and err.attempts,
    error = err and tostring(err), seconds = now() - started,
  }
  client:close()
  return outcome
end

function app.loaded()
  ngx.say(cjson.encode { loaded_in_init = app.loaded_in_init == true, version = app.sentry.VERSION })
end

function app.projects()
  local client = new_client()
  local res, err = client:get("/organizations/{org}/projects/", { query = { per_page = 5 } })
  client:close()
  ngx.say(cjson.encode { status = res and res.status, count = res and #res.body, error = err and tostring(err) })
end

--- A request whose response takes a second to come.
function app.slow()
  local client = new_client()
  local started = now()
  local res, err = client:get("/fake/slow/", { query = { ms = 1000 } })
  client:close()
  ngx.say(cjson.encode { status = res and res.status, error = err and tostring(err), seconds = now() - started })
end

function app.rate_limited()
  ngx.say(cjson.encode(rate_limited_request(ngx.var.arg_key, tonumber(ngx.var.arg_retry_after))))
end

--- Two requests `gap` seconds apart, on a client whose idle connections are
-- kept `timeout` seconds in a pool of `pool` (the keepalive options).
function app.keepalive()
  local client = new_client { keepalive_timeout = tonumber(ngx.var.arg_timeout),
    keepalive_pool_size = tonumber(ngx.var.arg_pool) }
  local first = client:get("/fake/echo/")
  ngx.sleep(tonumber(ngx.var.arg_gap))
  local second = client:get("/fake/echo/")
  client:close()
  ngx.say(cjson.encode { first = first and first.status, second = second and second.status })
end

--- For set_by_lua, where nginx cannot yield: the outcome as a JSON string.
function app.rate_limited_outcome(key)
  return cjson.encode(rate_limited_request(key))
end

--- Starts the rate-limited request in a timer and answers at once; /result
-- shows the outcome when the timer is done.
function app.schedule()
  local key = ngx.var.arg_key
  local ok, err = ngx.timer.at(0, function(premature)
    if premature then return end
    ngx.shared.results:set(key, cjson.encode(rate_limited_request(key)))
  end)
  -- ngx.timer.at returns a true value (not necessarily `true`) on success
  ngx.say(cjson.encode { scheduled = ok and true or false, error = err })
end

function app.result()
  ngx.say(ngx.shared.results:get(ngx.var.arg_key) or cjson.encode { pending = true })
end

return app
