--- sentry-lua: a client for the Sentry REST API.
--
--     local sentry = require "sentry"
--     local client = assert(sentry.new { org = "acme" })  -- token from SENTRY_AUTH_TOKEN
--     local res = assert(client:get("/organizations/{org}/projects/"))
--
-- @module sentry
local core = require "sentry.core_loader" -- first: a missing or mismatched core is the error to report
local Client = require "sentry.client"
local config = require "sentry.config"
local governor = require "sentry.governor"
local errors = require "sentry.errors"
local json = require "sentry.json"
local token = require "sentry.token"
local transport = require "sentry.transport"
local url = require "sentry.url"

local sentry = {
  VERSION = "0.1.0",
  null = json.null,
  array = json.array,
  errors = errors,
  token = token,
  url = url,
  config = config,
}

--- The library's version, `"x.y.z"`; also sent in the `User-Agent` header
-- (`sentry-lua/x.y.z`) and the version of the `sentry-api` rock.
-- @field VERSION

--- JSON `null`: a value to put in a request body, and what a `null` in a
-- response body decodes to.
-- @field null

--- The submodules, also reachable as `require "sentry.<name>"`: `errors`,
-- `token`, `url`, `config`, and, loaded on first use, `scopes`, `endpoints`
-- and `dsn`.
-- @field errors

--- Every Sentry operation by name (see `sentry.api`): `sentry.api.describe(name)`,
-- `sentry.api.list()`; a client calls them as `client.api.<name> { ... }`.
-- Loaded on first use.
-- @field api

-- Loaded on first use: most scripts never need them.
local LAZY = { scopes = "sentry.scopes", endpoints = "sentry.endpoints", dsn = "sentry.dsn", api = "sentry.api" }

-- A client's `api` table: sentry.api (and the schema data) load when a
-- program first names an operation.
local function api_namespace(client)
  return setmetatable({}, {
    __index = function(namespace, name) return require("sentry.api").operation(client, namespace, name) end,
  })
end
setmetatable(sentry, {
  __index = function(module, name)
    local path = LAZY[name]
    if not path then return nil end
    local loaded = require(path)
    rawset(module, name, loaded)
    return loaded
  end,
})

--- Writes library warnings to stderr unless the caller routes them elsewhere.
local function default_log(level, message)
  io.stderr:write("sentry: ", level, ": ", message, "\n")
end

--- Creates a client.
--
-- Options (all optional; the README's "Options" and `sentry.config.DEFAULTS` have the defaults):
--
-- - `token`: the auth token; default `SENTRY_AUTH_TOKEN`, then `.sentryclirc`
--   files (`false`: none, for a client that fails with "no auth token")
-- - `base_url`: a self-hosted root, with or without `/api/0/`; `region`:
--   `"us"` or `"de"` (sentry.io's regions)
-- - `org`, `project`: what `{org}` and `{project}` in paths stand for
-- - `timeout`, `connect_timeout`: seconds
-- - `max_retries`, `max_retry_wait`, `max_total_wait`: retries after the first
--   try, the longest wait slept and the most all waits of one call add up to;
--   `backoff_base`, `backoff_factor`, `backoff_cap`: the exponential backoff;
--   `retry_unsafe`: also retry POST and PATCH after a failure the server may have acted on
-- - `sleep`: `function(seconds)` for every wait; may yield
-- - `user_agent`: appended to `sentry-lua/VERSION`
-- - `ca_file`, `proxy`, `proxy_username`, `proxy_password`, `insecure`:
--   TLS trust file, proxy, and no certificate checks (warns)
-- - `allow_http`: plain `http://` to a non-loopback host;
--   `follow_redirects`: redirects to the client's own origin
-- - `check_scopes`: refuse, without a request, calls the token cannot make
-- - `transport`: `"auto"` (nginx cosockets inside OpenResty, else libcurl),
--   `"curl"` (libcurl everywhere) or `"ngx"` (cosockets always; OpenResty only)
-- - `max_body_bytes`: larger responses fail with an error
-- - `keepalive_pool_size`, `keepalive_timeout`: OpenResty's idle connections
--   kept per worker and origin, and for how many seconds
-- - `log`: `function(level, message)` for the library's warnings (default: stderr)
-- - `budget`: where rate-limit budgets live, shared by every client of the
--   token: process memory (default), `{ shared_dict = "name" }` (a
--   `lua_shared_dict`, shared by nginx workers) or `{ redis = { host, port,
--   timeout, password, database, prefix } }` (shared by hosts); see
--   `sentry.budget_stores` and the README's "Many callers, workers and hosts"
-- - `config`: `false` skips the `.sentryclirc` files; `env`, `home`, `cwd`:
--   where configuration is read from (see `sentry.config.resolve`)
-- - `hooks`: functions called with one table, never holding the token:
--   `on_request{ attempt, headers, method, url }` before each try;
--   `on_response{ attempt, status, rate_limit, headers, method, url }` after
--   each response; `on_retry{ attempt, reason, status, wait, method, url }`
--   before each wait, where `reason` is `"rate_limited"` (a 429),
--   `"server_error"` (502, 503, 504, 507, 524), `"timeout"`, `"network"` (the
--   connection failed or dropped) or `"rate_limit_remaining"` (the endpoint's
--   window was used up: the wait comes before the request).
--
-- A misspelled option or one of the wrong type raises an error naming the
-- caller's line (and the option meant, when the name is close to one).
-- @tparam[opt] table opts the options above
-- @treturn ?Client
-- @treturn ?table err (kind "invalid") when the configuration cannot work
function sentry.new(opts)
  if opts ~= nil and type(opts) ~= "table" then errors.raise_at_caller("sentry.new expects a table of options") end
  opts = opts or {}
  local values, warnings = config.resolve(opts)
  if not values then return nil, errors.invalid(warnings) end
  -- Every message and error leaves through this: the exact token (any format) is masked.
  local scrub = token.scrubber(values.token)
  local user_log = opts.log or default_log
  local function log(level, message) user_log(level, scrub(message)) end
  for _, warning in ipairs(warnings or {}) do log("warn", warning) end

  if not values.token then
    return nil, errors.invalid("no auth token: pass token = \"...\", set SENTRY_AUTH_TOKEN, "
      .. "or add [auth] token to ~/.sentryclirc (create one at Settings > Auth Tokens)")
  end
  local ok, problem = token.check(values.token)
  if not ok then return nil, errors.invalid(problem) end
  local settings, range_problem = config.settings(values)
  if not settings then return nil, errors.invalid(range_problem) end

  local root, root_problem = url.api_root {
    base_url = settings.base_url, region = settings.region, allow_http = settings.allow_http }
  if not root then return nil, errors.invalid(root_problem) end
  if settings.ca_file then -- a typo here would otherwise surface as "certificate not trusted"
    local file, why = io.open(settings.ca_file, "rb")
    if not file then return nil, errors.invalid("ca_file cannot be read: " .. tostring(why)) end
    file:close()
  end
  if settings.insecure then
    log("warn", "TLS certificate verification is off (insecure = true): anyone on the network path can read the token")
  end

  local budgets, budget_problem = governor.for_token(settings.token, settings.budget)
  if not budgets then return nil, errors.invalid(budget_problem) end

  local info = token.parse(settings.token)
  settings.user_agent = "sentry-lua/" .. sentry.VERSION .. (settings.user_agent and " " .. settings.user_agent or "")
  local carrier, carrier_problem = transport.new(settings)
  if not carrier then return nil, errors.invalid(scrub(carrier_problem)) end

  local client = setmetatable({
    base_url = root,
    org = settings.org,
    project = settings.project,
    token_info = { type = info.type, org = info.org, url = info.url, region_url = info.region_url },
    _transport = carrier,
    _token_display = token.redact(settings.token),
    _timeout = settings.timeout,
    _sleep = settings.sleep or carrier.sleep,
    _log = log,
    _check_scopes = settings.check_scopes,
    _endpoints = {},
    _endpoints_count = 0,
  }, Client)
  client.api = api_namespace(client)
  client._exchange_context = {
    base_url = root, governor = budgets, log = log, retry = core.new_policy(settings),
    policy = { max_retry_wait = settings.max_retry_wait, max_total_wait = settings.max_total_wait,
      reset_margin = settings.reset_margin }, hooks = settings.hooks or {}, scrub = scrub,
    follow_redirects = settings.follow_redirects, token_scopes = function() return client:_token_scopes() end,
  }
  return client
end

return sentry
