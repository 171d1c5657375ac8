--- sentry-lua: a client for the Sentry REST API.
--
--     local sentry = require "sentry"
--     local client = assert(sentry.new { org = "acme" })  -- token from SENTRY_AUTH_TOKEN
--     local res = assert(client:get("/organizations/{org}/projects/"))
--
-- @module sentry
local Client = require "sentry.client"
local config = require "sentry.config"
local core = require "sentry.core_loader"
local endpoint_memory = require "sentry.endpoint_memory"
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

-- Loaded on first use: most scripts never need them.
local LAZY = { scopes = "sentry.scopes", endpoints = "sentry.endpoints", dsn = "sentry.dsn" }
setmetatable(sentry, {
  __index = function(module, name)
    local path = LAZY[name]
    if not path then return nil end
    local loaded = require(path)
    rawset(module, name, loaded)
    return loaded
  end,
})

local HOOKS = { "on_request", "on_response", "on_retry" }

-- Option types are checked by sentry.config (the one list of options); the
-- hooks table's contents are the client's own business.
local function check_hooks(hooks)
  for _, hook in ipairs(HOOKS) do
    if hooks and hooks[hook] ~= nil and type(hooks[hook]) ~= "function" then
      errors.raise_at_caller("sentry.new: hooks." .. hook .. " must be a function")
    end
  end
end

--- Writes library warnings to stderr unless the caller routes them elsewhere.
local function default_log(level, message)
  io.stderr:write("sentry: ", level, ": ", message, "\n")
end

-- `value ~= value` catches NaN, which compares false with everything.
local function positive(name, value)
  if value ~= nil and (value ~= value or value <= 0) then return name .. " must be greater than 0" end
end

local function non_negative(name, value)
  if value ~= nil and (value ~= value or value < 0) then return name .. " must be 0 or more" end
end

local function whole(name, value)
  if value ~= nil and not (value >= 1 and value == math.floor(value) and value < math.huge) then
    return name .. " must be a whole number of at least 1"
  end
end

local function check_ranges(values)
  return positive("timeout", values.timeout) or positive("connect_timeout", values.connect_timeout)
    or non_negative("max_retries", values.max_retries) or non_negative("max_retry_wait", values.max_retry_wait)
    or non_negative("max_total_wait", values.max_total_wait)
    or non_negative("backoff_base", values.backoff_base) or positive("backoff_factor", values.backoff_factor)
    or non_negative("backoff_cap", values.backoff_cap) or positive("max_body_bytes", values.max_body_bytes)
    or positive("keepalive_timeout", values.keepalive_timeout) or whole("keepalive_pool_size", values.keepalive_pool_size)
end

--- Creates a client.
--
-- Options (all optional; the README's "Options" has the defaults):
--
-- - `token`: the auth token; default `SENTRY_AUTH_TOKEN`, then `.sentryclirc`
--   files (`false`: none, for a client that fails with "no auth token")
-- - `base_url`: a self-hosted root, with or without `/api/0/`; `region`:
--   `"us"` or `"de"` (sentry.io's regions)
-- - `org`, `project`: what `{org}` and `{project}` in paths stand for
-- - `timeout`, `connect_timeout`: seconds (30, 10)
-- - `max_retries`, `max_retry_wait`, `max_total_wait`: retries after the first
--   try (3), the longest wait slept (60 s) and the most all waits of one call
--   add up to (120 s); `backoff_base`, `backoff_factor`,
--   `backoff_cap`: the exponential backoff (1, 2, 30); `retry_unsafe`: also
--   retry POST and PATCH after a failure the server may have acted on
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
--   kept per worker and origin (32), and for how many seconds (60)
-- - `log`: `function(level, message)` for the library's warnings (default: stderr)
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
  check_hooks(opts.hooks)
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
  local range_problem = check_ranges(values)
  if range_problem then return nil, errors.invalid(range_problem) end

  local root, root_problem = url.api_root {
    base_url = values.base_url, region = values.region, allow_http = values.allow_http }
  if not root then return nil, errors.invalid(root_problem) end
  if values.ca_file then -- a typo here would otherwise surface as "certificate not trusted"
    local file, why = io.open(values.ca_file, "rb")
    if not file then return nil, errors.invalid("ca_file cannot be read: " .. tostring(why)) end
    file:close()
  end
  if values.insecure then
    log("warn", "TLS certificate verification is off (insecure = true): anyone on the network path can read the token")
  end

  local info = token.parse(values.token)
  local user_agent = "sentry-lua/" .. sentry.VERSION
  if values.user_agent then user_agent = user_agent .. " " .. values.user_agent end
  local transport_choice = values.transport or "auto"
  if transport_choice ~= "auto" and transport_choice ~= "curl" and transport_choice ~= "ngx" then
    return nil, errors.invalid("transport must be \"auto\", \"curl\" or \"ngx\"")
  end
  local carrier, carrier_problem = transport.new {
    transport = transport_choice, token = values.token, user_agent = user_agent, ca_file = values.ca_file,
    proxy = values.proxy, proxy_username = values.proxy_username, proxy_password = values.proxy_password,
    insecure = values.insecure, connect_timeout = values.connect_timeout or 10,
    max_body_bytes = values.max_body_bytes or core.DEFAULT_MAX_BODY_BYTES,
    keepalive_pool_size = values.keepalive_pool_size or 32, keepalive_timeout = values.keepalive_timeout or 60 }
  if not carrier then return nil, errors.invalid(scrub(carrier_problem)) end

  local policy = {
    max_retries = values.max_retries or 3,
    max_retry_wait = values.max_retry_wait or 60,
    max_total_wait = values.max_total_wait or 120,
    backoff_base = opts.backoff_base or 1,
    backoff_factor = opts.backoff_factor or 2,
    backoff_cap = opts.backoff_cap or 30,
    reset_margin = 0.1,
    retry_unsafe = opts.retry_unsafe or false,
  }
  local client = setmetatable({
    base_url = root,
    org = values.org,
    project = values.project,
    token_info = { type = info.type, org = info.org, url = info.url, region_url = info.region_url },
    _transport = carrier,
    _token_display = token.redact(values.token),
    _timeout = values.timeout or 30,
    _sleep = opts.sleep or carrier.sleep,
    _hooks = opts.hooks or {},
    _log = log,
    _scrub = scrub,
    _check_scopes = opts.check_scopes or false,
    _follow_redirects = opts.follow_redirects or false,
    _limits = endpoint_memory.new(),
    _probed = endpoint_memory.new(),
    _endpoints = {},
    _endpoints_count = 0,
    _policy = policy,
    _retry = core.new_policy(policy),
  }, Client)
  return client
end

return sentry
