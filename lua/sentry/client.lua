--- The client: requests, responses, retries. Created by `sentry.new`.
-- @classmod sentry.Client
local errors = require "sentry.errors"
local Exchange = require "sentry.exchange"
local json = require "sentry.json"
local url = require "sentry.url"
local endpoints = require "sentry.endpoints"
local scopes = require "sentry.scopes"

local unpack = table.unpack or unpack

local Client = {}
Client.__index = Client

function Client:__tostring()
  local state = self._transport and "" or ", closed"
  return string.format("sentry.client(%s, token %s%s)", self.base_url, self._token_display, state)
end

local function release(self, collected)
  if self._async then self._async:close(collected) end
  if self._transport then self._transport:close() end
  self._transport, self._async = nil, nil
end

--- Closes the client's connection. Later calls raise "attempt to use a closed client".
-- Idempotent; also run by `__gc` and, on Lua 5.4, by `<close>`.
function Client:close() release(self, false) end
Client.__close = Client.close
-- A finalizer must treat the event loop's handles with care (see Driver:close).
function Client:__gc() release(self, true) end

local function check_open(self)
  if getmetatable(self) ~= Client then error("bad self: expected a sentry client (use client:method())", 3) end
  if not self._transport then error("attempt to use a closed client", 3) end
end

--- The endpoint identity used for rate-limit state: method + catalogue template
-- when the catalogue knows the path, else method + path without query.
local function endpoint_key(method, target)
  local known = endpoints.match(method, target)
  if known then return method .. " " .. known.template, known end
  local parts = url.split(target)
  return method .. " " .. (parts and parts.path or target), nil
end

local ENDPOINT_CACHE_SIZE = 256

-- endpoint_key, remembered per method and path: scripts call the same few
-- endpoints again and again, and the catalogue walk is on every request.
function Client:_endpoint(method, target)
  local query = target:find("?", 1, true) or target:find("#", 1, true)
  local path_key = method .. " " .. (query and target:match("^[^?#]*") or target)
  local cached = self._endpoints[path_key]
  if cached then return cached[1], cached[2] end
  local key, known = endpoint_key(method, target)
  if self._endpoints_count >= ENDPOINT_CACHE_SIZE then
    self._endpoints, self._endpoints_count = {}, 0
  end
  self._endpoints[path_key] = { key, known }
  self._endpoints_count = self._endpoints_count + 1
  return key, known
end

-- Builds the target URL from a path and options.
function Client:_target(path, opts)
  local filled, missing = url.fill(path, opts.params, self)
  if not filled then return nil, missing end
  local target, wrong = url.resolve(self.base_url, filled)
  if not target then return nil, wrong end
  local query, query_problem = url.encode_query(opts.query)
  if not query then return nil, query_problem end
  return url.with_query(target, query)
end

-- Shared by every request that adds no headers of its own; never modified.
local PLAIN_HEADERS = { Accept = "application/json" }
local JSON_BODY_HEADERS = { Accept = "application/json", ["Content-Type"] = "application/json" }

local function request_headers(opts, has_body)
  if not opts.headers then return has_body and JSON_BODY_HEADERS or PLAIN_HEADERS end
  local headers = { Accept = "application/json" }
  if has_body then headers["Content-Type"] = "application/json" end
  do
    for name, value in pairs(opts.headers) do
      if type(name) ~= "string" or (type(value) ~= "string" and type(value) ~= "number") then
        errors.raise_at_caller("opts.headers must map header names to strings (got " .. type(name) .. " = "
          .. type(value) .. ")")
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
  if not encoded then return nil, "the body cannot be sent as JSON: " .. tostring(problem) end
  return encoded
end

-- Read only, for requests made without options.
local NO_OPTIONS = {}

-- Checks a request's arguments and builds its exchange; `level` points
-- argument errors at the caller's caller. `operation` (a catalogue
-- description) names the endpoint when the caller knows it.
function Client:_prepare(method, path, opts, level, operation)
  if type(method) ~= "string" then error("bad argument #1 to 'request' (method must be a string)", level) end
  if type(path) ~= "string" then error("bad argument #2 to 'request' (path must be a string)", level) end
  if opts ~= nil and type(opts) ~= "table" then error("request options must be a table", level) end
  opts = opts or NO_OPTIONS
  method = method:upper()
  local target, problem = self:_target(path, opts)
  if not target then return nil, errors.invalid(problem) end
  local body, body_problem = encode_body(opts.body)
  if body_problem then return nil, errors.invalid(body_problem) end
  local key, known
  if operation then
    key, known = method .. " " .. operation.template, operation
  else
    key, known = self:_endpoint(method, target)
  end
  if self._check_scopes then
    local refused = self:_refuse_unscoped(method, target, known)
    if refused then return nil, refused end
  end
  return Exchange.new(self._exchange_context, {
    method = method, target = target, body = body, key = key, known = known,
    headers = request_headers(opts, opts.body ~= nil), -- JSON unless the caller says otherwise
    timeout = opts.timeout or self._timeout,
  })
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
  local exchange, err = self:_prepare(method, path, opts, 3)
  if not exchange then return nil, err end
  return self:_send(exchange)
end

-- A request to a known operation (sentry.api): as `request`, with the
-- operation's catalogue entry for its scopes and rate-limit state.
function Client:_call(method, path, opts, operation)
  check_open(self)
  local exchange, err = self:_prepare(method, path, opts, 4, operation)
  if not exchange then return nil, err end
  return self:_send(exchange)
end

-- The retry loop. Plain Lua from end to end, so a yielding `sleep` (ngx.sleep,
-- coroutine.yield) works: no C call sits between the caller and the sleep.
function Client:_send(exchange)
  local carrier = self._transport
  while true do
    local pause = exchange:pause()
    while pause.action == "wait" do
      self._sleep(pause.wait)
      pause = exchange:pause()
    end
    if pause.action == "fail" then return nil, pause.err end
    local outcome = exchange:settle(exchange:attempt(carrier))
    if outcome.action == "done" then return outcome.res, outcome.err end
    self._sleep(outcome.wait)
  end
end

-- Refuses, without a request, a call the token's scopes cannot make.
function Client:_refuse_unscoped(method, target, known)
  if not known or #known.scopes == 0 then return nil end
  local info, why = self:whoami()
  if not info then return why end
  if scopes.satisfies(info.scopes, known.scopes) then return nil end
  return errors.new { kind = "scope", method = method, url = target, required_scopes = known.scopes,
    token_scopes = self:_token_scopes(),
    detail = "the token lacks the scopes this endpoint needs (checked before sending: check_scopes = true)" }
end

-- The token's scopes, when whoami has asked; a copy.
function Client:_token_scopes()
  return self._whoami and { unpack(self._whoami.scopes) }
end

--- What the token may do: `GET /api/0/`, asked once per client.
-- @treturn ?table `{ scopes = {...sorted}, user = table|nil, token_type = "user"|"org"|... }`
-- @treturn ?table err
function Client:whoami()
  check_open(self)
  if not self._whoami then
    local res, err = self:get("/")
    if not res then return nil, err end
    local auth = type(res.body) == "table" and res.body.auth
    if type(auth) ~= "table" then
      return nil, errors.new { kind = "unauthorized", method = "GET", url = self.base_url,
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
  end
  -- a copy, so callers cannot change what can() and check_scopes decide
  local cached = self._whoami
  return { scopes = { unpack(cached.scopes) }, user = cached.user, token_type = cached.token_type }
end

--- Can the token call this endpoint? Asks `whoami` once, then answers from the
-- endpoint catalogue. Endpoints the catalogue does not know are assumed callable.
-- @tparam string method
-- @tparam string path any form `request` accepts
-- @treturn ?boolean
-- @treturn ?table the scopes that would allow it (any one suffices) when false; err when nil
function Client:can(method, path)
  check_open(self)
  if type(method) ~= "string" then error("bad argument #1 to 'can' (method must be a string)", 2) end
  if type(path) ~= "string" then error("bad argument #2 to 'can' (path must be a string)", 2) end
  local known = endpoints.match(method:upper(), url.fill(path, nil, self) or path)
  if not known or #known.scopes == 0 then return true end
  local info, err = self:whoami()
  if not info then return nil, err end
  if scopes.satisfies(info.scopes, known.scopes) then return true end
  return false, known.scopes
end

--- `request` with the method in the name: `client:get(path, opts)` is
-- `client:request("GET", path, opts)`. Also `post`, `put`, `patch`, `delete`
-- and `head`, below.
-- @function Client:get
-- @tparam string path as for `request`
-- @tparam[opt] table opts as for `request`
-- @treturn ?table res
-- @treturn ?table err

--- `request("POST", path, opts)`; `opts.body` is a table (sent as JSON) or a string.
-- @function Client:post
-- @tparam string path
-- @tparam[opt] table opts
-- @treturn ?table res
-- @treturn ?table err

--- `request("PUT", path, opts)`.
-- @function Client:put
-- @tparam string path
-- @tparam[opt] table opts
-- @treturn ?table res
-- @treturn ?table err

--- `request("PATCH", path, opts)`.
-- @function Client:patch
-- @tparam string path
-- @tparam[opt] table opts
-- @treturn ?table res
-- @treturn ?table err

--- `request("DELETE", path, opts)`.
-- @function Client:delete
-- @tparam string path
-- @tparam[opt] table opts
-- @treturn ?table res
-- @treturn ?table err

--- `request("HEAD", path, opts)`: the status and headers, no body.
-- @function Client:head
-- @tparam string path
-- @tparam[opt] table opts
-- @treturn ?table res
-- @treturn ?table err

for _, method in ipairs { "get", "post", "put", "patch", "delete", "head" } do
  local upper = method:upper()
  Client[method] = function(self, path, opts)
    return Client.request(self, upper, path, opts)
  end
end

--- The latest rate-limit state the server reported for an endpoint, to any
-- client of this token in the process.
-- @tparam string method
-- @tparam string path any form `request` accepts
-- @treturn ?table `{ limit, remaining, reset, concurrent_limit, concurrent_remaining }`
function Client:rate_limit(method, path)
  check_open(self)
  local target = url.resolve(self.base_url, (url.fill(path, nil, self) or path))
  if not target then return nil end
  return self._exchange_context.governor:last_rate_limit((self:_endpoint(method:upper(), target)))
end

--- Runs many requests at once (libcurl multi) and waits for all of them. In
-- flight never exceeds `concurrency` nor what the server's concurrency headers
-- allow; each request retries and waits on its own, by the rules of `request`.
-- @tparam table requests each `{ "GET", "/path/", opts }` or `{ method=, path=, query=, ... }`
-- @tparam[opt] table opts `{ concurrency = 10 }`
-- @treturn table one `{ res = ..., err = ... }` per request, in input order
function Client:batch(requests, opts)
  check_open(self)
  return require("sentry.batch").run(self, requests, opts)
end

--- The client's event-loop driver (see `sentry.async`), made on first use.
-- @tparam[opt] table options `{ loop = luv, schedule = function(fn), concurrency = 10 }`
--   (options apply when the driver is made)
function Client:async(options)
  check_open(self)
  if not self._async then self._async = require("sentry.async").new(self, options) end
  return self._async
end

--- Starts a request without waiting; `callback(res, err)` runs when it is done
-- (in Neovim through `vim.schedule`). Needs an event loop: see `sentry.async`.
-- @return a handle: `handle:cancel()` stops the request if it is still
--   pending (its transfer too); the callback then runs once, with an error of
--   kind "cancelled". It returns false when the request had finished.
function Client:request_async(method, path, opts, callback)
  check_open(self)
  return require("sentry.async").request(self, method, path, opts, callback)
end

--- Starts a batch without waiting; `callback(results)` gets one `{ res, err }`
-- per request, in input order.
-- @return a handle: `handle:cancel()` stops the batch's pending requests
--   (their results get an error of kind "cancelled"); the callback still runs once.
function Client:batch_async(requests, opts, callback)
  check_open(self)
  return require("sentry.async").batch(self, requests, opts, callback)
end

--- Iterates over the pages of a list: `for items, res in client:pages(path, opts)`
-- (see `sentry.paginate.pages`).
-- @function Client:pages
-- @tparam string path any form `request` accepts
-- @tparam[opt] table opts `{ per_page, limit, max_pages, cursor, params, query, headers, timeout }`

--- Iterates over the items of a list, one at a time: `for item in client:paginate(path, opts)`
-- (see `sentry.paginate.items`).
-- @function Client:paginate
-- @tparam string path any form `request` accepts
-- @tparam[opt] table opts as for `pages`

--- Collects the items of a list into one array; never raises for run-time
-- failures (see `sentry.paginate.collect`).
-- @function Client:collect
-- @tparam string path any form `request` accepts
-- @tparam[opt] table opts as for `pages`
-- @treturn ?table items
-- @treturn ?table err
-- @treturn table state `{ cursor, done, pages, count, items, dropped }`

local paginate = require "sentry.paginate"
Client.pages = paginate.pages
Client.paginate = paginate.items
Client.collect = paginate.collect
Client.pages_async = paginate.pages_async
Client.paginate_async = paginate.items_async
Client.collect_async = paginate.collect_async

return Client
