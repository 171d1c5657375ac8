--- An HTTP/1.1 transport on nginx cosockets, for OpenResty: a request inside a
-- handler or a timer yields to nginx instead of blocking the worker. It
-- answers exactly like the libcurl handle (`perform` returns the same response
-- table, or `nil, message, code`), so retries, rate limits and errors are the
-- client's one implementation; header checks and rate-limit parsing are the C
-- core's. Connections are pooled with `setkeepalive`; TLS uses nginx's
-- `lua_ssl_trusted_certificate` (the `ca_file` option cannot apply here).
-- Responses are not compressed: no Accept-Encoding is sent.
-- @module sentry.cosocket
local core = require "sentry.core"
local text = require "sentry.text"
local url = require "sentry.url"

local unpack = table.unpack or unpack

local cosocket = {}

local KEEPALIVE_IDLE_MS = 60000
local KEEPALIVE_POOL_SIZE = 32
local CHUNK_SIZE_LIMIT = 2 ^ 40
local MAX_TIMEOUT_MS = 2 ^ 31 - 1

--- Can this nginx phase use cosockets?
-- @treturn boolean
function cosocket.available()
  local ngx = rawget(_G, "ngx")
  if not (ngx and ngx.socket and ngx.get_phase) then return false end
  local phase = ngx.get_phase()
  return phase == "rewrite" or phase == "access" or phase == "content" or phase == "timer"
    or phase == "ssl_cert" or phase == "ssl_session_fetch"
end

local Transport = {}
Transport.__index = Transport

--- Makes a transport. The token is held in a closure, not in any table.
-- @tparam table settings `{ token, user_agent, insecure, connect_timeout, max_body_bytes }`
function cosocket.new(settings)
  core.check_request("GET", "http://localhost/", nil, settings.token)
  local authorization = "Bearer " .. settings.token
  local transport = setmetatable({
    user_agent = settings.user_agent,
    verify = not settings.insecure,
    connect_timeout = settings.connect_timeout or 10,
    max_body_bytes = settings.max_body_bytes or core.DEFAULT_MAX_BODY_BYTES,
  }, Transport)
  function transport.authorization() return authorization end
  return transport
end

local function failure(message, code)
  return nil, message, code
end

--- Maps a cosocket error to the libcurl handle's codes.
local function failed(err, what)
  if err == "timeout" then return failure("timed out while " .. what, "timeout") end
  return failure(what .. " failed: " .. tostring(err), "network")
end

local function read_chunked(sock, limit)
  local parts, total = {}, 0
  while true do
    local size_line, err = sock:receive("*l")
    if not size_line then return nil, err end
    local size = tonumber(size_line:match("^%s*(%x+)"), 16)
    if not size or size > CHUNK_SIZE_LIMIT then return nil, "bad chunk size" end
    if size == 0 then
      repeat -- trailers, up to the blank line
        local trailer, trailer_err = sock:receive("*l")
        if not trailer then return nil, trailer_err end
      until trailer == ""
      return table.concat(parts)
    end
    total = total + size
    if total > limit then return nil, "too large" end
    local data, data_err = sock:receive(size)
    if not data then return nil, data_err end
    parts[#parts + 1] = data
    local crlf, crlf_err = sock:receive(2)
    if crlf ~= "\r\n" then return nil, crlf_err or "bad chunk ending" end
  end
end

local function request_text(method, parts, headers, body, authorization, user_agent)
  local host = parts.host
  if (parts.scheme == "https" and parts.port ~= 443) or (parts.scheme == "http" and parts.port ~= 80) then
    host = host .. ":" .. parts.port
  end
  local target = parts.path .. (parts.query and ("?" .. parts.query) or "")
  local lines = { method .. " " .. target .. " HTTP/1.1", "Host: " .. host, "Authorization: " .. authorization }
  if user_agent then lines[#lines + 1] = "User-Agent: " .. user_agent end
  for name, value in pairs(headers or {}) do lines[#lines + 1] = name .. ": " .. value end
  if body or method == "POST" or method == "PUT" or method == "PATCH" then
    lines[#lines + 1] = "Content-Length: " .. #(body or "")
  end
  lines[#lines + 1] = ""
  lines[#lines + 1] = body or ""
  return table.concat(lines, "\r\n")
end

--- One request; the same contract as the C handle's `perform`.
function Transport:perform(method, target, headers, body, timeout)
  core.check_request(method, target, headers)
  local parts = url.split(target)
  if not parts then return failure("not an http(s) URL: " .. target, "invalid") end
  local sock = ngx.socket.tcp()
  -- cosockets take whole milliseconds below 2^31; timeout = math.huge is allowed
  local timeout_ms = math.floor(math.min(timeout * 1000, MAX_TIMEOUT_MS))
  sock:settimeouts(math.floor(math.min(self.connect_timeout * 1000, timeout_ms)), timeout_ms, timeout_ms)
  local pool = parts.scheme .. "://" .. parts.host .. ":" .. parts.port
  local ok, err = sock:connect(parts.host, parts.port, { pool = pool })
  if not ok then
    if err == "timeout" then return failure("connection timed out", "timeout") end
    return failure("could not connect to " .. pool .. ": " .. tostring(err), "connect")
  end
  if parts.scheme == "https" and sock:getreusedtimes() == 0 then
    -- false: no session object wanted back (asking for one trips an assertion in
    -- Debian's lua-resty-core after some handshakes)
    ok, err = sock:sslhandshake(false, parts.host, self.verify)
    if not ok then
      sock:close()
      local untrusted = tostring(err):find("verify", 1, true)
      return failure("TLS handshake failed: " .. tostring(err), untrusted and "tls" or "network")
    end
  end
  local sent
  sent, err = sock:send(request_text(method, parts, headers, body, self.authorization(), self.user_agent))
  if not sent then
    sock:close()
    return failed(err, "sending the request")
  end
  local res, message, code = self:read_response(sock, method)
  if not res then
    sock:close()
    return nil, message, code
  end
  return res
end

--- Reads status, headers and body; pools the connection when it may be reused.
function Transport:read_response(sock, method)
  local status_line, err = sock:receive("*l")
  if not status_line then return failed(err, "reading the status line") end
  local status = tonumber(status_line:match("^HTTP/%d%.%d (%d%d%d)"))
  if not status then return failure("not an HTTP response: " .. status_line:sub(1, 60), "network") end
  local headers, header_bytes = {}, 0
  local repeats = {} -- name -> its values, joined once at the end (per line would be quadratic)
  while true do
    local line, line_err = sock:receive("*l")
    if not line then return failed(line_err, "reading the headers") end
    if line == "" then break end
    header_bytes = header_bytes + #line
    if header_bytes > core.MAX_HEADER_BYTES then
      return failure(string.format("the response headers are larger than %d KiB", core.MAX_HEADER_BYTES / 1024),
        "too_large")
    end
    local name, value = line:match("^([^:%s]+):(.*)$")
    if not name then return failure("Header without colon", "network") end
    name, value = name:lower(), text.trim(value, " \t")
    local first = headers[name]
    if first == nil then
      headers[name] = value
    else
      repeats[name] = repeats[name] or { first }
      table.insert(repeats[name], value)
    end
  end
  for name, values in pairs(repeats) do headers[name] = table.concat(values, ", ") end
  local body, body_err
  local length = tonumber(headers["content-length"])
  local close_after = (headers.connection or ""):lower():find("close", 1, true) ~= nil
  if method == "HEAD" or status == 204 or status == 304 or (status >= 100 and status < 200) then
    body = ""
  elseif (headers["transfer-encoding"] or ""):lower():find("chunked", 1, true) then
    body, body_err = read_chunked(sock, self.max_body_bytes)
  elseif length then
    if length > self.max_body_bytes then body, body_err = nil, "too large" else body, body_err = sock:receive(length) end
  else
    body, body_err = sock:receive("*a")
    close_after = true
    if body and #body > self.max_body_bytes then body, body_err = nil, "too large" end
  end
  if not body then
    if body_err == "too large" then
      return failure(string.format("the response body is larger than max_body_bytes (%d bytes)",
        self.max_body_bytes), "too_large")
    end
    return failed(body_err, "reading the body")
  end
  if close_after then sock:close() else sock:setkeepalive(KEEPALIVE_IDLE_MS, KEEPALIVE_POOL_SIZE) end
  local received_at = core.now()
  local rate_limit, retry_after, date = core.read_rate_limit(headers, received_at)
  return { status = status, headers = headers, body = body, received_at = received_at,
    rate_limit = rate_limit, retry_after = retry_after, date = date }
end


local ThreadEngine = {}
ThreadEngine.__index = ThreadEngine

--- An engine for `client:batch` on nginx light threads, with the interface of
-- the C multi engine (start, perform, completed, wait, in_flight): each
-- transfer is a thread doing `perform`, so the batch driver is the same.
function cosocket.engine(transport)
  return setmetatable({ transport = transport, threads = {}, done = {}, running = 0 }, ThreadEngine)
end

function ThreadEngine:start(id, method, target, headers, body, timeout)
  local transport = self.transport
  self.threads[id] = ngx.thread.spawn(function()
    local res, message, code = transport:perform(method, target, headers, body, timeout)
    return { id = id, res = res, message = message, code = code }
  end)
  self.running = self.running + 1
end

function ThreadEngine.perform() end

function ThreadEngine:in_flight()
  return self.running
end

--- Waits (yielding to nginx) until a transfer finishes or the time is up.
function ThreadEngine:wait(seconds)
  local waiting = { ngx.thread.spawn(function() ngx.sleep(seconds) end) }
  for _, thread in pairs(self.threads) do waiting[#waiting + 1] = thread end
  local ok, result = ngx.thread.wait(unpack(waiting))
  ngx.thread.kill(waiting[1])
  if ok and type(result) == "table" and result.id then
    self.threads[result.id] = nil
    self.done[#self.done + 1] = result
  end
end

--- Finished transfers since the last call; like the multi engine, a transfer
-- counts as in flight until it is reported here.
function ThreadEngine:completed()
  local done = self.done
  self.done = {}
  self.running = self.running - #done
  return done
end

return cosocket
