--- One logical request across its attempts: the admission by the budget's
-- governor before each attempt, the retry decision after it, hooks, and the final `res` or `err`.
-- Shared by the blocking path (`client:request`) and batches, so both follow
-- one policy; the policy itself lives in C (`core.new_policy`, `policy:decide`).
-- What it needs from the client comes in one context record (see `Exchange.new`);
-- its decisions go back as records `{ action = ..., ... }`.
-- @module sentry.exchange
local errors = require "sentry.errors"
local json = require "sentry.json"
local links = require "sentry.links"
local url = require "sentry.url"

local Exchange = {}
Exchange.__index = Exchange

--- Methods whose repetition cannot change the outcome (RFC 9110 9.2.2).
local IDEMPOTENT = { GET = true, HEAD = true, PUT = true, DELETE = true, OPTIONS = true }

local TRANSPORT_KIND = { timeout = "timeout", invalid = "invalid" }

local TRANSPORT_HINT = {
  tls = " (the server's certificate is not trusted: its issuer is unknown, or it names another host; "
    .. "for a private CA pass ca_file = \"/path/to/ca.pem\", check that base_url names the host the "
    .. "certificate is for, or set insecure = true to skip verification)",
}

-- Seconds between looks while the endpoint's concurrency is used up.
local POLL = require("sentry.admission").POLL

local REDIRECTS = { [301] = true, [302] = true, [303] = true, [307] = true, [308] = true }

--- Redirects followed per request (follow_redirects = true) before giving up.
local MAX_REDIRECTS = 5

--- With follow_redirects, the URL to go to next: same origin as the client's
-- API root only (the request carries the token), within MAX_REDIRECTS.
-- @treturn ?string the next URL
-- @treturn ?string why the redirect is not followed
function Exchange:redirect_target(res)
  local target = url.join(self.target, res.headers.location)
  if not target then return nil, "the redirect has no usable Location" end
  local _, outside = url.within_root(self.context.base_url, target)
  if outside then return nil, "not followed: " .. outside end
  if self.redirects >= MAX_REDIRECTS then
    return nil, "not followed: more than " .. MAX_REDIRECTS .. " redirects"
  end
  return target
end

--- Starts an exchange.
-- @tparam table context what the client shares with its exchanges: `base_url`,
--   `governor` (the token's rate-limit budgets, `sentry.governor`), `log`,
--   `policy` (the waits: `max_retry_wait`,
--   `max_total_wait`, `reset_margin`), `retry` (`core.new_policy`), `hooks`,
--   `scrub`, `follow_redirects` and `token_scopes()` (the token's scopes, when known)
-- @tparam table request `{ method, target, headers, body, timeout, key, known }`
-- @treturn Exchange
function Exchange.new(context, request)
  request.context = context
  request.attempts, request.redirects, request.waited, request.place_waited = 0, 0, 0, 0
  request.idempotent = IDEMPOTENT[request.method] or false
  return setmetatable(request, Exchange)
end

function Exchange:hook(hook, info)
  info.method, info.url = self.method, self.target
  hook(info)
end

--- Counts a wait against max_total_wait, the bound on all the waits of one call.
-- @treturn ?string why the wait is refused (nothing is counted then)
function Exchange:charge(wait)
  local limit = self.context.policy.max_total_wait
  if self.waited + wait > limit then
    return string.format("waiting %.1f s more would pass max_total_wait (%g s; %.1f s waited already)",
      wait, limit, self.waited)
  end
  self.waited = self.waited + wait
end

local GO = { action = "go" }

--- Whether to start the next attempt now: asks the budget's governor (see
-- `sentry.governor`), once per attempt, then for a place in flight.
-- @treturn table `{ action = "go" }`, `{ action = "wait", wait = seconds,
--   recheck = ... }` (then ask again; a driver may ask sooner when a response
--   comes: `recheck` is `"probe"` when waiting for the endpoint's first answer,
--   `"one"` when a finished request may free the way for one waiter, nil when
--   the wait holds a reserved slot and must be kept) or `{ action = "fail",
--   err = err }` (the wait exceeds max_retry_wait or max_total_wait)
function Exchange:pause()
  local context = self.context
  local governor, policy = context.governor, context.policy
  if not self.admitted then
    local decision = governor:admit(self.key, policy, context.log)
    local wait = decision.wait
    local refused = decision.action == "refuse" and "not waiting longer than max_retry_wait"
      or decision.action ~= "send" and self:charge(wait)
    if refused then
      return { action = "fail", err = errors.new { kind = "rate_limited", method = self.method, url = self.target,
        retry_after = wait, rate_limit = governor:last_rate_limit(self.key), attempts = self.attempts,
        detail = "the endpoint's rate-limit window is used up; " .. refused } }
    end
    if decision.action == "ask_again" then
      return { action = "wait", wait = wait, recheck = decision.reason == "probe" and "probe" or "one" }
    end
    self.admitted = true -- "send", or "reserved": the slot is ours after the wait
    if decision.action == "reserved" then
      local on_retry = context.hooks.on_retry
      if on_retry then self:hook(on_retry, { attempt = self.attempts, reason = "rate_limit_remaining", wait = wait }) end
      return { action = "wait", wait = wait }
    end
  end
  if not governor:enter(self.key, context.log) then
    -- all the places in flight are taken; one held by a process that died is
    -- freed only after admission.FLIGHT_TTL, so the same limits bound this wait
    self.place_waited = self.place_waited + POLL
    local refused = self.place_waited > policy.max_retry_wait and "not waiting longer than max_retry_wait"
      or self:charge(POLL)
    if refused then
      return { action = "fail", err = errors.new { kind = "rate_limited", method = self.method, url = self.target,
        retry_after = POLL, rate_limit = governor:last_rate_limit(self.key), attempts = self.attempts,
        detail = string.format("no place among the requests in flight came free in %.1f s; %s",
          self.place_waited, refused) } }
    end
    return { action = "wait", wait = POLL, recheck = "one" }
  end
  self.admitted, self.entered, self.place_waited = false, true, 0
  return GO
end

--- Tells the governor an attempt ended: with `res`, or without an answer.
function Exchange:release(res)
  local context = self.context
  context.governor:learn(self.key, res, self.entered, context.log, self.known ~= nil)
  self.entered = false
end

--- Marks the start of an attempt.
function Exchange:begin()
  self.attempts = self.attempts + 1
  local on_request = self.context.hooks.on_request
  if on_request then
    local headers = {} -- a copy: the request's table may be shared with other requests
    for name, value in pairs(self.headers) do headers[name] = value end
    self:hook(on_request, { attempt = self.attempts, headers = headers })
  end
end

-- Gives the admission back when what starts an attempt raises (a hook, a
-- request the transport refuses), then raises on.
local function admitted_or_released(exchange, ok, ...)
  if not ok then
    exchange:release(nil)
    error((...), 0)
  end
  return ...
end

-- A request the transport refuses (a header it never sends, a line break in
-- a value) is the caller's mistake: raised at the caller's line.
local function refused_at_caller(ok, ...)
  if not ok then errors.raise_about_request((...)) end
  return ...
end

local function begin_and_perform(exchange, carrier)
  exchange:begin()
  return refused_at_caller(pcall(carrier.perform, carrier, exchange))
end

local function begin_and_start(exchange, engine, id)
  exchange:begin()
  refused_at_caller(pcall(engine.start, engine, id, exchange.method, exchange.target, exchange.headers,
    exchange.body, exchange.timeout))
end

--- Makes one attempt through `carrier:perform`: what `settle` takes.
function Exchange:attempt(carrier)
  return admitted_or_released(self, pcall(begin_and_perform, self, carrier))
end

--- Starts one attempt on an engine (`engine:start`), for the drivers.
function Exchange:start_on(engine, id)
  admitted_or_released(self, pcall(begin_and_start, self, engine, id))
end

--- Takes an attempt's outcome (what the transport returned).
-- @treturn table `{ action = "retry", wait = seconds }` or `{ action = "done", res = res, err = err }`
function Exchange:settle(res, message, code)
  local context = self.context
  local hooks = context.hooks
  self:release(res)
  if res then
    if hooks.on_response then
      self:hook(hooks.on_response, { attempt = self.attempts, status = res.status, rate_limit = res.rate_limit,
        headers = res.headers })
    end
  end
  if res and REDIRECTS[res.status] and context.follow_redirects then
    local target, why = self:redirect_target(res)
    if target then
      self.redirects = self.redirects + 1
      -- 303, and 301/302 after a POST, continue as GET without the body (RFC 9110 15.4)
      if res.status == 303 or ((res.status == 301 or res.status == 302) and self.method == "POST") then
        if self.method ~= "HEAD" then self.method = "GET" end
        self.body = nil
        self.idempotent = true
      end
      self.target = target
      return { action = "retry", wait = 0 }
    end
    self.redirect_refused = why
  end
  -- redirects followed are not retries
  local action, wait, reason = context.retry:decide(self.attempts - self.redirects, self.idempotent, res, code)
  local over_budget = action == "retry" and self:charge(wait)
  if over_budget then action = "over_budget" end
  if action == "retry" then
    if hooks.on_retry then
      self:hook(hooks.on_retry, { attempt = self.attempts, reason = reason, status = res and res.status, wait = wait })
    end
    return { action = "retry", wait = wait }
  end
  local ok, err
  if res then
    ok, err = self:finish(res)
  else
    err = errors.new { kind = TRANSPORT_KIND[code] or "network", code = code, method = self.method,
      url = self.target, detail = message .. (TRANSPORT_HINT[code] or ""), attempts = self.attempts }
  end
  if err then errors.scrub(err, context.scrub) end
  if err and action ~= "done" and err.kind == "rate_limited" then
    err.retry_after = wait
    if action == "too_long" then
      err.detail = (err.detail and err.detail .. "; " or "")
        .. string.format("the server asks to wait %.1f s, more than max_retry_wait", wait)
    end
  end
  if err and over_budget then err.detail = (err.detail and err.detail .. "; " or "") .. "not retried: " .. over_budget end
  return { action = "done", res = ok, err = err }
end

--- Turns a completed HTTP response into `res` or `nil, err`.
function Exchange:finish(res)
  local headers = res.headers
  local decoded, decode_problem = json.decode_response(headers["content-type"], res.body)
  res.attempts = self.attempts
  res.links = headers.link and links.parse(headers.link) or nil
  res.received_at, res.retry_after, res.clock_skew = nil, nil, nil
  if res.status < 400 and not REDIRECTS[res.status] then
    if decode_problem then
      return nil, errors.new { kind = "decode", status = res.status, method = self.method, url = self.target,
        detail = "the response is not valid JSON: " .. decode_problem, body = res.body,
        attempts = self.attempts, rate_limit = res.rate_limit }
    end
    if decoded ~= nil then
      res.body = decoded
    elseif res.body == "" then
      res.body = nil -- 204, HEAD, and any other empty body
    end
    return res
  end
  -- Error bodies come in many shapes and content types (429s are JSON sent as text/html).
  local body = decoded
  if body == nil then body = json.decode_lenient(res.body) end
  local detail, code = errors.extract_detail(body, res.body)
  local err = errors.new {
    kind = errors.kind_for_status(res.status),
    status = res.status, detail = detail, code = code, body = body == nil and res.body or body,
    method = self.method, url = self.target, rate_limit = res.rate_limit, attempts = self.attempts,
    headers = headers,
  }
  if REDIRECTS[res.status] then
    err.location = url.join(self.target, headers.location) or headers.location
    if self.redirect_refused then
      err.detail = (detail and detail .. "; " or "") .. self.redirect_refused
    end
    if type(body) == "table" and type(body.detail) == "table" and type(body.detail.extra) == "table" then
      -- Sentry's moved-resource body; a URL only when it is one
      err.location = url.join(self.target, body.detail.extra.url) or err.location
    end
  end
  if res.status == 403 then
    if self.known then err.required_scopes = self.known.scopes end
    err.token_scopes = self.context.token_scopes()
  end
  return nil, err
end

return Exchange
