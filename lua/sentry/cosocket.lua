--- An HTTP/1.1 transport on nginx cosockets, for OpenResty: a request inside a
-- handler or a timer yields to nginx instead of blocking the worker. It
-- answers exactly like the libcurl handle (`perform` returns the same response
-- table, or `nil, message, code`), so retries, rate limits and errors are the
-- client's one implementation; header checks, header and rate-limit parsing
-- and the size limits' errors are the C core's: this module does only socket
-- work. Connections are pooled with `setkeepalive`; TLS uses nginx's
-- `lua_ssl_trusted_certificate` (the `ca_file` option cannot apply here).
-- Responses are not compressed: no Accept-Encoding is sent.
-- @module sentry.cosocket
local core = require "sentry.core_loader"
local url = require "sentry.url"

local unpack = table.unpack or unpack

local cosocket = {}

local CHUNK_SIZE_LIMIT = 2 ^ 40
local READ_SIZE = 65536

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
-- @tparam table settings `{ token, user_agent, insecure, connect_timeout, max_body_bytes,
--   keepalive_pool_size, keepalive_timeout }`
function cosocket.new(settings)
  core.check_request("GET", "http://localhost/", nil, settings.token)
  local authorization = "Bearer " .. settings.token
  local transport = setmetatable({
    user_agent = settings.user_agent,
    verify = not settings.insecure,
    connect_timeout = settings.connect_timeout,
    max_body_bytes = settings.max_body_bytes,
    -- idle connections kept per worker and origin, and for how long
    pool_size = settings.keepalive_pool_size,
    keepalive_ms = core.timeout_ms(settings.keepalive_timeout),
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

-- The core's clamping, the same for both transports.
local to_ms = core.timeout_ms

--- Gives the socket the time left before the deadline; false when none is left.
local function arm(sock, deadline)
  local left = deadline - core.monotonic()
  if left <= 0 then return false end
  sock:settimeout(to_ms(left))
  return true
end

--- Reads a response under one deadline. A cosocket's read timeout restarts with
-- every byte, so each receive gets only the time left: a server dripping bytes
-- cannot stretch a request past its timeout. What arrives beyond what was asked
-- for waits in `pending`.
local Reader = {}
Reader.__index = Reader

local function new_reader(sock, deadline)
  return setmetatable({ sock = sock, deadline = deadline, pending = "", received = 0 }, Reader)
end

--- The next bytes that arrive, at most `size`.
function Reader:receive(size)
  if not arm(self.sock, self.deadline) then return nil, "timeout" end
  local data, err = self.sock:receiveany(size)
  if data then self.received = self.received + #data end
  return data, err
end

--- One line without its CRLF; "too long" past `limit` bytes.
function Reader:line(limit)
  while true do
    local at = self.pending:find("\n", 1, true)
    if at then
      if at - 1 > limit then return nil, "too long" end
      local line = self.pending:sub(1, at - 1):gsub("\r$", "")
      self.pending = self.pending:sub(at + 1)
      return line
    end
    if #self.pending > limit then return nil, "too long" end
    local data, err = self:receive(READ_SIZE)
    if not data then return nil, err end
    self.pending = self.pending .. data
  end
end

--- Exactly `count` bytes.
function Reader:bytes(count)
  local parts, have = { self.pending:sub(1, count) }, math.min(#self.pending, count)
  self.pending = self.pending:sub(count + 1)
  while have < count do
    local data, err = self:receive(math.min(count - have, READ_SIZE))
    if not data then return nil, err end
    parts[#parts + 1] = data
    have = have + #data
  end
  return table.concat(parts)
end

--- Everything up to the end of the connection; "too large" past `limit` bytes.
function Reader:rest(limit)
  local parts, have = { self.pending }, #self.pending
  self.pending = ""
  while have <= limit do
    local data, err = self:receive(READ_SIZE)
    if not data then
      if err == "closed" then return table.concat(parts) end
      return nil, err
    end
    parts[#parts + 1] = data
    have = have + #data
  end
  return nil, "too large"
end

local function read_chunked(reader, limit)
  local parts, total = {}, 0
  while true do
    local size_line, err = reader:line(READ_SIZE)
    if not size_line then return nil, err end
    local size = tonumber(size_line:match("^%s*(%x+)"), 16)
    if not size or size > CHUNK_SIZE_LIMIT then return nil, "bad chunk size" end
    if size == 0 then
      repeat -- trailers, up to the blank line
        local trailer, trailer_err = reader:line(READ_SIZE)
        if not trailer then return nil, trailer_err end
      until trailer == ""
      return table.concat(parts)
    end
    total = total + size
    if total > limit then return nil, "too large" end
    local data, data_err = reader:bytes(size)
    if not data then return nil, data_err end
    parts[#parts + 1] = data
    local crlf, crlf_err = reader:bytes(2)
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
  for name, value in pairs(headers or {}) do
    lines[#lines + 1] = name .. ": " .. value
    if name:lower() == "user-agent" then user_agent = nil end -- the caller's wins
  end
  if user_agent then lines[#lines + 1] = "User-Agent: " .. user_agent end
  if body or method == "POST" or method == "PUT" or method == "PATCH" then
    lines[#lines + 1] = "Content-Length: " .. #(body or "")
  end
  lines[#lines + 1] = ""
  lines[#lines + 1] = body or ""
  return table.concat(lines, "\r\n")
end

--- One try on one connection: a new one or one from the pool.
-- @return the response, or nil, message, code and whether the connection came
--   from the pool and failed before a byte of the response (the server may have
--   closed it while it sat idle)
function Transport:attempt(parts, method, request, deadline)
  local left = deadline - core.monotonic()
  if left <= 0 then return failure("connection timed out", "timeout") end
  local sock = ngx.socket.tcp()
  sock:settimeouts(to_ms(math.min(self.connect_timeout, left)), to_ms(left), to_ms(left))
  local pool = parts.scheme .. "://" .. parts.host .. ":" .. parts.port
  local ok, err = sock:connect(parts.host, parts.port, { pool = pool })
  if not ok then
    if err == "timeout" then return failure("connection timed out", "timeout") end
    return failure("could not connect to " .. pool .. ": " .. tostring(err), "connect")
  end
  local pooled = sock:getreusedtimes() > 0
  if parts.scheme == "https" and not pooled then
    if not arm(sock, deadline) then
      sock:close()
      return failed("timeout", "the TLS handshake")
    end
    -- false: no session object wanted back (asking for one trips an assertion in
    -- Debian's lua-resty-core after some handshakes)
    ok, err = sock:sslhandshake(false, parts.host, self.verify)
    if not ok then
      sock:close()
      local untrusted = tostring(err):find("verif", 1, true) or tostring(err):find("certificate", 1, true)
      return failure("TLS handshake failed: " .. tostring(err), untrusted and "tls" or "network")
    end
  end
  local reader = new_reader(sock, deadline)
  local res, message, code
  local sent
  local sent_at = core.now()
  if arm(sock, deadline) then sent, err = sock:send(request) else err = "timeout" end
  if sent then
    res, message, code = self:read_response(reader, method, sent_at)
    if res then return res end
  else
    res, message, code = failed(err, "sending the request")
  end
  sock:close()
  return res, message, code, pooled and code == "network" and reader.received == 0
end

--- One request; the same contract as the C handle's `perform`. `timeout`
-- bounds the whole request, from connecting to the last byte of the body.
function Transport:perform(method, target, headers, body, timeout)
  core.check_request(method, target, headers)
  local parts = url.split(target)
  if not parts then return failure("not an http(s) URL: " .. target, "invalid") end
  local deadline = core.monotonic() + timeout
  local request = request_text(method, parts, headers, body, self.authorization(), self.user_agent)
  local res, message, code, stale
  -- a stale pooled connection: the request goes again on another, as libcurl does
  for _ = 0, self.pool_size do
    res, message, code, stale = self:attempt(parts, method, request, deadline)
    if not stale then break end
  end
  return res, message, code
end

local function headers_too_large()
  return failure(core.HEADERS_TOO_LARGE_MESSAGE, "too_large")
end

--- Reads one response's status line and headers; `budget` is what header bytes may still come.
-- @treturn ?number status
-- @treturn table|string headers, or the error message (then the code)
-- @treturn number|string the budget left, or the error code
local function read_head(reader, budget)
  local status_line, err = reader:line(budget)
  if not status_line then
    if err == "too long" then return headers_too_large() end
    return failed(err, "reading the status line")
  end
  local status = tonumber(status_line:match("^HTTP/%d%.%d (%d%d%d)"))
  if not status then return failure("not an HTTP response: " .. status_line:sub(1, 60), "network") end
  budget = budget - #status_line
  local lines = {}
  while true do
    local line, line_err = reader:line(budget)
    if not line then
      if line_err == "too long" then return headers_too_large() end
      if line_err == "closed" then return failure(core.CUT_HEADERS_MESSAGE, "network") end
      return failed(line_err, "reading the headers")
    end
    if line == "" then break end
    budget = budget - #line
    if budget < 0 then return headers_too_large() end
    if not line:find("^[^:%s]+:") then return failure("Header without colon", "network") end
    lines[#lines + 1] = line
  end
  return status, core.parse_headers(table.concat(lines, "\n")), budget
end

--- Reads status, headers and body, skipping interim (1xx) responses; pools the
-- connection only when the response was read to its end and nothing followed it.
-- `sent_at`: the wall clock before the request was sent.
function Transport:read_response(reader, method, sent_at)
  local status, headers
  local budget = core.MAX_HEADER_BYTES
  repeat -- 100 Continue, 103 Early Hints...: the final response follows (101 switches protocols)
    status, headers, budget = read_head(reader, budget)
    if not status then return nil, headers, budget end
  until status >= 200 or status == 101
  local body, body_err
  local length = tonumber(headers["content-length"])
  local close_after = status == 101 or (headers.connection or ""):lower():find("close", 1, true) ~= nil
  if method == "HEAD" or status == 204 or status == 304 or status < 200 then
    body = ""
  elseif (headers["transfer-encoding"] or ""):lower():find("chunked", 1, true) then
    body, body_err = read_chunked(reader, self.max_body_bytes)
  elseif length then
    if length > self.max_body_bytes then body, body_err = nil, "too large" else body, body_err = reader:bytes(length) end
  else
    body, body_err = reader:rest(self.max_body_bytes)
    close_after = true
  end
  if not body then
    if body_err == "too large" then
      return failure(string.format(core.BODY_TOO_LARGE_FORMAT, self.max_body_bytes), "too_large")
    end
    return failed(body_err, "reading the body")
  end
  if close_after or reader.pending ~= "" then
    reader.sock:close()
  else
    reader.sock:setkeepalive(self.keepalive_ms, self.pool_size)
  end
  local received_at = core.now()
  local rate_limit, retry_after, clock_skew = core.read_rate_limit(headers, sent_at, received_at)
  return { status = status, headers = headers, body = body, received_at = received_at,
    rate_limit = rate_limit, retry_after = retry_after, clock_skew = clock_skew }
end


local ThreadEngine = {}
ThreadEngine.__index = ThreadEngine

--- An engine for `client:batch` on nginx light threads, with the interface of
-- the C multi engine (see `sentry.transport`): each transfer is a thread doing
-- `perform`, so the batch driver is the same.
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

--- Stops a transfer; it is never reported.
function ThreadEngine:cancel(id)
  local thread = self.threads[id]
  if not thread then return false end
  ngx.thread.kill(thread)
  self.threads[id], self.running = nil, self.running - 1
  return true
end

function ThreadEngine:close()
  for id in pairs(self.threads) do self:cancel(id) end
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
