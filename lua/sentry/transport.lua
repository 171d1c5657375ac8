--- How a client's requests travel: nginx cosockets or libcurl, chosen once,
-- when the client is made; one interface either way: `perform` (one request),
-- `engine` (many at once), `sleep`, `event_engine` (for `sentry.async`), `close`.
-- Engines, the C multi engine or nginx light threads (`sentry.cosocket`), all
-- have `start(id, method, url, headers, body, timeout)`, `perform()`, `completed()`
-- (a list of `{ id, res }` or `{ id, message, code }`), `wait(seconds)`,
-- `in_flight()`, `cancel(id)` and `close()`.
-- @module sentry.transport
local core = require "sentry.core_loader"

local transport = {}

local Transport = {}
Transport.__index = Transport

--- Inside OpenResty ngx.sleep, which yields to the event loop; elsewhere a C
-- sleep that burns no CPU.
local function default_sleep()
  local ngx_sleep = rawget(_G, "ngx") and ngx.sleep
  if not ngx_sleep then return core.sleep end
  return function(seconds)
    local ok = pcall(ngx_sleep, seconds)
    if not ok then core.sleep(seconds) end -- phases where nginx cannot yield
  end
end

--- Makes a client's transport.
-- @tparam table settings the client's options (`sentry.config.settings`), with
--   `user_agent` the full header value
-- @treturn ?table the transport
-- @treturn ?string what is wrong
function transport.new(settings)
  local in_openresty = rawget(_G, "ngx") ~= nil and ngx.socket ~= nil
  local choice = settings.transport
  if choice == "ngx" and not in_openresty then
    return nil, "transport \"ngx\" needs OpenResty (nginx with its Lua module)"
  end
  -- The token lives in closures only, and libcurl gets it only when it carries requests.
  local self = setmetatable({ sleep = default_sleep(),
    new_handle = function() return core.new_handle(settings) end }, Transport)
  if choice == "ngx" or (choice == "auto" and in_openresty) then
    self.nginx = require("sentry.cosocket").new(settings)
    self.nginx_always = choice == "ngx"
  else
    local created, handle = pcall(self.new_handle)
    if not created then return nil, tostring(handle) end
    self.handle = handle
  end
  return self
end

--- The libcurl handle (also the field `handle`, nil until then), made on first
-- use when cosockets carry the requests (a phase without cosockets, an event loop).
function Transport:curl()
  if self.closed then error("attempt to use a closed client", 0) end
  if not self.handle then self.handle = self.new_handle() end
  return self.handle
end

--- nginx cosockets when they can yield here (or always with transport = "ngx").
function Transport:over_nginx()
  return self.nginx ~= nil and (self.nginx_always or require("sentry.cosocket").available())
end

--- One try of `{ method, target, headers, body, timeout }`: the response, or nil, message, code.
function Transport:perform(request)
  local carrier = self:over_nginx() and self.nginx or self:curl()
  return carrier:perform(request.method, request.target, request.headers, request.body, request.timeout)
end

--- An engine for one batch, its own until `engine_done`: nginx light threads
-- when requests go over cosockets, else a libcurl multi engine (the idle one a
-- finished batch left, or a new one). Connections are shared all the same;
-- transfers and their results are not, so a batch run from a hook, or one
-- after a batch that raised, gets only its own.
function Transport:engine()
  if self:over_nginx() then return require("sentry.cosocket").engine(self.nginx) end
  local idle = self.multi
  self.multi = nil
  return idle or core.new_engine(self:curl(), "poll")
end

--- Takes back a finished batch's engine (a batch that raised never returns
-- its own: the collector closes it, with whatever it had in flight).
function Transport:engine_done(engine)
  if self.multi == nil and not self.closed and type(engine) == "userdata" and engine:in_flight() == 0 then
    self.multi = engine
  else
    engine:close()
  end
end

--- A libcurl engine driven by an event loop's socket and timer callbacks.
function Transport:event_engine()
  return core.new_engine(self:curl(), "socket")
end

function Transport:close()
  if self.multi then self.multi:close() end
  if self.handle then self.handle:close() end
  self.multi, self.handle, self.closed = nil, nil, true
end

return transport
