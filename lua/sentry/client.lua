--- The client: requests, responses, retries. Created by `sentry.new`.
-- @classmod sentry.Client
local core = require "sentry.core"
local errors = require "sentry.errors"
local json = require "sentry.json"
local links = require "sentry.links"
local url = require "sentry.url"
local endpoints = require "sentry.endpoints"
local token = require "sentry.token"
local scopes = require "sentry.scopes"

local Client = {}
Client.__index = Client

--- Methods whose repetition cannot change the outcome (RFC 9110 9.2.2).
local IDEMPOTENT = { GET = true, HEAD = true, PUT = true, DELETE = true, OPTIONS = true }

local TRANSPORT_KIND = { timeout = "timeout", invalid = "invalid" }

local TRANSPORT_HINT = {
  tls = " (the server's certificate is not trusted: pass ca_file = \"/path/to/ca.pem\" "
    .. "for a private CA, or insecure = true to skip verification)",
}

function Client:__tostring()
  local state = self._handle and "" or ", closed"
  return string.format("sentry.client(%s, token %s%s)", self.base_url, self._token_display, state)
end

--- Closes the client's connection. Later calls raise "attempt to use a closed client".
-- Idempotent; also run by `__gc` and, on Lua 5.4, by `<close>`.
function Client:close()
  if self._handle then self._handle:close() end
  self._handle = nil
end
Client.__close = Client.close
Client.__gc = Client.close

local function check_open(self)
  if getmetatable(self) ~= Client then error("bad self: expected a sentry client (use client:method())", 3) end
  if not self._handle then error("attempt to use a closed client", 3) end
end

local function check_opts(opts)
  if opts ~= nil and type(opts) ~= "table" then error("request options must be a table", 3) end
  return opts or {}
end

--- The endpoint identity used for rate-limit state: method + catalogue template
-- when the catalogue knows the path, else method + path without query.
local function endpoint_key(method, target)
  local known = endpoints.match(method, target)
  if known then return method .. " " .. known.template, known end
  local parts = url.split(target)
  return method .. " " .. (parts and parts.path or target), nil
end

--- Builds the target URL from a path and options.
function Client:_target(path, opts)
  local filled, missing = url.fill(path, opts.params, self)
  if not filled then return nil, missing end
  local target, wrong = url.resolve(self.base_url, filled)
  if not target then return nil, wrong end
  return url.with_query(target, url.encode_query(opts.query))
end

local function request_headers(opts, has_body)
  local headers = { Accept = "application/json" }
  if has_body then headers["Content-Type"] = "application/json" end
  if opts.headers then
    for name, value in pairs(opts.headers) do
      if type(name) ~= "string" or (type(value) ~= "string" and type(value) ~= "number") then
        error("headers must map names to strings", 4)
      end
      -- a caller's header replaces our default of the same name, whatever its case
      for default in pairs(headers) do
        if default:lower() == name:lower() then headers[default] = nil end
      end
      headers[name] = tostring(value)
    end
  end
  return headers
end

local function encode_body(body)
  if body == nil or type(body) == "string" then return body end
  if type(body) ~= "table" then error("body must be a table (sent as JSON) or a string", 4) end
  local encoded, problem = json.encode(body)
  if not encoded then return nil, "body cannot be encoded as JSON: " .. tostring(problem) end
  return encoded
end

local function call_hook(self, name, info)
  local hook = self._hooks[name]
  if hook then hook(info) end
end

--- Turns a completed HTTP exchange into `res` or `nil, err`.
function Client:_finish(method, target, res, attempts, known)
  local headers = res.headers
  local decoded, decode_problem = json.decode_response(headers["content-type"], res.body)
  res.attempts = attempts
  res.links = headers.link and links.parse(headers.link) or nil
  if res.status < 400 and res.status ~= 302 then
    if decode_problem then
      return nil, errors.new { kind = "decode", status = res.status, method = method, url = target,
        detail = "the response is not valid JSON: " .. decode_problem, body = res.body,
        attempts = attempts, rate_limit = res.rate_limit }
    end
    res.body = decoded == nil and res.body or decoded
    res.received_at, res.retry_after, res.date = nil, nil, nil
    return res
  end
  -- Error bodies come in many shapes and content types (429s are JSON sent as text/html).
  local body = decoded
  if body == nil then body = json.decode_lenient(res.body) end
  local detail, code = errors.extract_detail(body, res.body)
  local err = errors.new {
    kind = res.status == 302 and "http" or errors.kind_for_status(res.status),
    status = res.status, detail = detail, code = code, body = body == nil and res.body or body,
    method = method, url = target, rate_limit = res.rate_limit, attempts = attempts,
    headers = headers,
  }
  if res.status == 302 or res.status == 301 or res.status == 307 or res.status == 308 then
    err.location = headers.location
    if type(body) == "table" and type(body.detail) == "table" and type(body.detail.extra) == "table" then
      err.location = body.detail.extra.url or err.location
    end
  end
  if res.status == 403 then self:_explain_forbidden(err, method, target, known) end
  return nil, err
end

--- Adds what the catalogue and the token say about scopes to a 403.
function Client:_explain_forbidden(err, method, target, known)
  known = known or endpoints.match(method, target)
  if known then err.required_scopes = known.scopes end
  if self._whoami then err.token_scopes = self._whoami.scopes end
end

--- Sends one request, retrying per the client's policy.
-- @tparam string method "GET", "POST", ...
-- @tparam string path relative to the API root, "/api/0/..." or a same-origin URL;
--   `{name}` placeholders come from `opts.params`, then `client.org`/`client.project`
-- @tparam[opt] table opts `{ params, query, headers, body, timeout }`
-- @treturn ?table res `{ status, headers, body, rate_limit, links, attempts }`
-- @treturn ?table err (see `sentry.errors`)
function Client:request(method, path, opts)
  check_open(self)
  if type(method) ~= "string" then error("bad argument #1 to 'request' (method must be a string)", 2) end
  if type(path) ~= "string" then error("bad argument #2 to 'request' (path must be a string)", 2) end
  opts = check_opts(opts)
  method = method:upper()
  local target, problem = self:_target(path, opts)
  if not target then return nil, errors.invalid(problem) end
  local body, body_problem = encode_body(opts.body)
  if body_problem then return nil, errors.invalid(body_problem) end
  local headers = request_headers(opts, opts.body ~= nil and type(opts.body) == "table")
  local timeout = opts.timeout or self._timeout
  local key, known = endpoint_key(method, target)
  if self._check_scopes then
    local refused = self:_refuse_unscoped(method, target, known)
    if refused then return nil, refused end
  end
  return self:_send(method, target, headers, body, timeout, key, known)
end

--- The retry loop. Plain Lua from end to end, so a yielding `sleep` (ngx.sleep,
-- coroutine.yield) works: no C call sits between the caller and the sleep.
function Client:_send(method, target, headers, body, timeout, key, known)
  local idempotent = IDEMPOTENT[method] or false
  local attempts = 0
  while true do
    local last = self._limits[key]
    if last then
      local wait = core.proactive_wait(last, self._policy.reset_margin)
      if wait > self._policy.max_retry_wait then
        return nil, errors.new { kind = "rate_limited", method = method, url = target, retry_after = wait,
          rate_limit = last.rate_limit, attempts = attempts,
          detail = "the endpoint's rate-limit window is used up; not waiting longer than max_retry_wait" }
      elseif wait > 0 then
        call_hook(self, "on_retry", { attempt = attempts, reason = "rate_limit_remaining", wait = wait,
          method = method, url = target })
        self._sleep(wait)
      end
    end
    attempts = attempts + 1
    call_hook(self, "on_request", { method = method, url = target, attempt = attempts, headers = headers })
    local res, message, code = self._handle:perform(method, target, headers, body, timeout)
    if res then
      if res.rate_limit then
        self._limits[key] = { rate_limit = res.rate_limit, date = res.date, received_at = res.received_at }
      end
      call_hook(self, "on_response", { method = method, url = target, attempt = attempts, status = res.status,
        rate_limit = res.rate_limit, headers = res.headers })
    end
    local action, wait, reason = core.retry_decide(self._policy, attempts, idempotent, res, code)
    if action == "retry" then
      call_hook(self, "on_retry", { attempt = attempts, reason = reason, status = res and res.status,
        wait = wait, method = method, url = target })
      self._sleep(wait)
    else
      local ok, err
      if res then
        ok, err = self:_finish(method, target, res, attempts, known)
      else
        err = errors.new { kind = TRANSPORT_KIND[code] or "network", code = code, method = method, url = target,
          detail = token.scrub(message) .. (TRANSPORT_HINT[code] or ""), attempts = attempts }
      end
      if err and action ~= "done" and err.kind == "rate_limited" then
        err.retry_after = wait
        if action == "too_long" then
          err.detail = (err.detail and err.detail .. "; " or "")
            .. string.format("the server asks to wait %.1f s, more than max_retry_wait", wait)
        end
      end
      return ok, err
    end
  end
end

--- Refuses, without a request, a call the token's scopes cannot make.
function Client:_refuse_unscoped(method, target, known)
  if not known or #known.scopes == 0 then return nil end
  local allowed, why = self:can(method, target)
  if allowed then return nil end
  if allowed == nil then return why end -- whoami itself failed
  return errors.new { kind = "scope", method = method, url = target, required_scopes = known.scopes,
    token_scopes = self._whoami and self._whoami.scopes,
    detail = "the token lacks the scopes this endpoint needs (checked before sending: check_scopes = true)" }
end

--- What the token may do: `GET /api/0/`, asked once per client.
-- @treturn ?table `{ scopes = {...sorted}, user = table|nil, token_type = "user"|"org"|... }`
-- @treturn ?table err
function Client:whoami()
  check_open(self)
  if self._whoami then return self._whoami end
  local res, err = self:get("/")
  if not res then return nil, err end
  local auth = type(res.body) == "table" and res.body.auth
  if type(auth) ~= "table" then
    return nil, errors.new { kind = "unauthorized", status = res.status, method = "GET", url = self.base_url,
      detail = "the API did not accept the token (GET /api/0/ answered auth: null)" }
  end
  local granted = {}
  for _, scope in ipairs(type(auth.scopes) == "table" and auth.scopes or {}) do
    -- a scope newer than this library grants nothing it knows how to check
    if scopes.is_known(scope) then granted[#granted + 1] = scope end
  end
  table.sort(granted)
  local user = res.body.user
  self._whoami = { scopes = granted, user = type(user) == "table" and user or nil,
    token_type = self.token_info.type }
  return self._whoami
end

--- Can the token call this endpoint? Asks `whoami` once, then answers from the
-- endpoint catalogue. Endpoints the catalogue does not know are assumed callable.
-- @tparam string method
-- @tparam string path any form `request` accepts
-- @treturn ?boolean
-- @treturn ?table the scopes that would allow it (any one suffices) when false; err when nil
function Client:can(method, path)
  check_open(self)
  local known = endpoints.match(method:upper(), url.fill(path, nil, self) or path)
  if not known or #known.scopes == 0 then return true end
  local info, err = self:whoami()
  if not info then return nil, err end
  if scopes.satisfies(info.scopes, known.scopes) then return true end
  return false, known.scopes
end

for _, method in ipairs { "get", "post", "put", "patch", "delete", "head" } do
  local upper = method:upper()
  Client[method] = function(self, path, opts)
    return Client.request(self, upper, path, opts)
  end
end

--- The latest rate-limit state the server reported for an endpoint.
-- @tparam string method
-- @tparam string path any form `request` accepts
-- @treturn ?table `{ limit, remaining, reset, concurrent_limit, concurrent_remaining }`
function Client:rate_limit(method, path)
  check_open(self)
  local target = url.resolve(self.base_url, (url.fill(path, nil, self) or path))
  if not target then return nil end
  local last = self._limits[(endpoint_key(method:upper(), target))]
  return last and last.rate_limit
end

local paginate = require "sentry.paginate"
Client.pages = paginate.pages
Client.paginate = paginate.items
Client.collect = paginate.collect

return Client
