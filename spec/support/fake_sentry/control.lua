-- Test-control routes under /api/0/fake/: no authentication, each one produces a
-- situation a client must cope with (errors of every shape, flaky and limited
-- endpoints, slow, streamed, huge, broken or missing responses).
-- luacheck: globals ngx

local json = require "fake_sentry.json"
local pagination = require "fake_sentry.pagination"
local ratelimit = require "fake_sentry.ratelimit"
local respond = require "fake_sentry.respond"
local state = require "fake_sentry.state"

local control = {}

local REASONS = {
  [200] = "OK", [201] = "Created", [204] = "No Content", [302] = "Found",
  [304] = "Not Modified", [400] = "Bad Request", [401] = "Unauthorized",
  [403] = "Forbidden", [404] = "Not Found", [405] = "Method Not Allowed",
  [409] = "Conflict", [410] = "Gone", [413] = "Request Entity Too Large",
  [429] = "Too Many Requests", [500] = "Internal Server Error", [502] = "Bad Gateway",
  [503] = "Service Temporarily Unavailable", [504] = "Gateway Time-out",
  [507] = "Insufficient Storage", [524] = "A Timeout Occurred",
}

local DEFAULT_DETAILS = {
  [400] = "Invalid request.",
  [401] = "Invalid token",
  [403] = respond.FORBIDDEN,
  [404] = respond.NOT_FOUND,
  [409] = "A resource with this slug already exists.",
  [429] = respond.rate_limit_detail(40, 1),
  [500] = "Internal Error",
}

local DETAIL_OBJECT_MESSAGES = {
  ["sso-required"] = "Must login via SSO",
  ["member-disabled-over-limit"] = "Organization over member limit",
  ["sudo-required"] = "Account verification required.",
  ["email-verification-required"] = "Email verification required.",
  ["2fa-required"] = "Organization requires two-factor authentication to be enabled",
  ["superuser-required"] = "Superuser required",
  ["parameter-validation-error"] = "Invalid parameters",
}

local function reason(status)
  return REASONS[status] or "Unknown"
end

-- Each shape returns body, content type and extra headers for a status.
local SHAPES = {}

function SHAPES.detail_string(req, status)
  local detail = req:arg("detail") or DEFAULT_DETAILS[status] or ("Fake error " .. status)
  return json.encode({ detail = detail }), "application/json"
end

function SHAPES.detail_object(req)
  local code = req:arg("code") or "sso-required"
  local extra = {}
  if code == "sso-required" then extra.loginUrl = req.origin .. "/auth/login/acme/" end
  return json.encode({ detail = {
    code = code,
    message = req:arg("detail") or DETAIL_OBJECT_MESSAGES[code] or "Error",
    extra = extra,
  } }), "application/json"
end

function SHAPES.field_errors()
  return json.encode({
    version = json.array({ "This field is required." }),
    projects = json.array({ "Invalid project slugs" }),
  }), "application/json"
end

-- A 410 brownout of a deprecated endpoint.
function SHAPES.message()
  return json.encode({ message = "This API no longer exists." }), "application/json", {
    ["X-Sentry-Deprecation-Date"] = "2024-01-01T00:00:00Z",
    ["X-Sentry-Replacement-Endpoint"] = "/api/0/organizations/{organization_id_or_slug}/events/",
  }
end

function SHAPES.bare_string(req)
  return json.encode(req:arg("detail") or "Some text"), "application/json"
end

-- What a proxy in front of Sentry sends: nginx's own error page.
function SHAPES.html(_, status)
  local title = status .. " " .. reason(status)
  return "<html>\r\n<head><title>" .. title .. "</title></head>\r\n<body>\r\n<center><h1>"
    .. title .. "</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n",
    "text/html"
end

function SHAPES.error_id()
  return json.encode({ detail = "Internal Error", errorId = "abc123" }), "application/json"
end

function SHAPES.empty()
  return nil
end

-- A debugging proxy's error page that quotes the request's headers, the
-- Authorization header included.
function SHAPES.echo_headers(_, status)
  local lines = { status .. " " .. reason(status) }
  for name, value in pairs(ngx.req.get_headers()) do
    lines[#lines + 1] = name .. ": " .. (type(value) == "table" and table.concat(value, ", ") or value)
  end
  return table.concat(lines, "\n"), "text/plain"
end

local function send_shaped(req, status, shape, headers)
  local build = SHAPES[shape]
  if not build then
    respond.bad_request("Unknown shape " .. tostring(shape) .. ".")
  end
  local body, content_type, shape_headers = build(req, status)
  headers = headers or {}
  for name, value in pairs(shape_headers or {}) do headers[name] = value end
  if req:arg("retry_after") then headers["Retry-After"] = req:arg("retry_after") end
  return respond.raw(status, body, req:arg("content_type") or content_type, headers)
end

local function status_arg(req, name, default)
  local status = req:number_arg(name, default)
  if status < 200 or status > 599 or status ~= math.floor(status) then
    respond.bad_request("Invalid status " .. tostring(req:arg(name)) .. ".")
  end
  return status
end

-- Request headers in the order received, names in lower case; a repeated
-- name (in any case) gives a list of its values.
local function received_headers()
  local headers = {}
  local raw = ngx.req.raw_header()
  for name, value in raw:gmatch("\n([^:\r\n]+):[ \t]*([^\r\n]*)") do
    name = name:lower()
    local seen = headers[name]
    if seen == nil then
      headers[name] = value
    elseif type(seen) == "table" then
      seen[#seen + 1] = value
    else
      headers[name] = json.array({ seen, value })
    end
  end
  return headers
end

-- ANY /api/0/fake/echo/...: the request as the server received it.
function control.echo(req)
  return respond.json(200, {
    method = req.method,
    uri = ngx.var.request_uri,
    path = req.path,
    args = req.args,
    headers = received_headers(),
    body = req:body() or json.null,
  })
end

-- ANY /api/0/fake/status/{code}/?shape=S[&detail=][&code=][&content_type=][&retry_after=]
function control.status(req, code)
  local status = tonumber(code)
  if status < 200 or status > 599 then respond.bad_request("Invalid status " .. code .. ".") end
  return send_shaped(req, status, req:arg("shape") or "detail_string")
end

local function record(key, status, arrived)
  state.record(key, {
    time = arrived,
    method = ngx.req.get_method(),
    status = status,
    uri = ngx.var.request_uri,
    connection = tonumber(ngx.var.connection),
  })
end

local function flaky_headers(req, now)
  local headers = {}
  local retry_after = req:number_arg("retry_after")
  if retry_after then
    headers["Retry-After"] = req:arg("retry_after_date") == "1"
      and ngx.http_time(math.floor(now + retry_after)) or req:arg("retry_after")
  end
  local reset_in = req:number_arg("reset_in")
  local remaining = req:number_arg("remaining")
  if reset_in or remaining then
    headers["X-Sentry-Rate-Limit-Limit"] = req:number_arg("limit", 40)
    headers["X-Sentry-Rate-Limit-Remaining"] = remaining or 0
    headers["X-Sentry-Rate-Limit-Reset"] = math.floor(now) + (reset_in or 1)
  end
  return headers
end

-- A 200 JSON body sent in two parts, `ms` milliseconds (at most 10 s) apart:
-- the headers and `head` at once, `tail` after the pause.
local function held_back_json(head, tail, ms)
  ngx.header["Content-Type"] = "application/json"
  ngx.print(head)
  ngx.flush(true)
  ngx.sleep(math.min(ms, 10000) / 1000)
  ngx.print(tail)
end

-- ANY /api/0/fake/flaky/{key}/?fail=N&status=S[&shape=][&retry_after=SECS]
--   [&retry_after_date=1][&reset_in=SECS][&remaining=N][&limit=N][&clock=SECS]
-- The first N requests for key fail with S, later ones succeed. `clock` puts
-- the server's clock (Date and the times in the headers) that far ahead.
function control.flaky(req, key)
  local arrived = ratelimit.now()
  local clock = req:number_arg("clock", 0)
  if clock ~= 0 then ngx.header["Date"] = ngx.http_time(math.floor(arrived + clock)) end
  local attempt = state.incr("flaky:" .. key)
  local failing = attempt <= req:number_arg("fail", 1)
  local status = failing and status_arg(req, "status", 503) or 200
  record(key, status, arrived)

  if not failing then return respond.json(200, { ok = true, attempt = attempt }) end
  local headers = flaky_headers(req, arrived + clock)
  if status == 429 and not req:arg("shape") then
    return respond.raw(429, json.encode({ detail = respond.rate_limit_detail(req:number_arg("limit", 40), 1) }),
      "text/html", headers)
  end
  return send_shaped(req, status, req:arg("shape") or "detail_string", headers)
end

-- ANY /api/0/fake/limited/{key}/?limit=N&window=W[&body_ms=M]: a fixed-window
-- limiter; body_ms holds the body back after the headers (and their Date).
function control.limited(req, key)
  local arrived = ratelimit.now()
  local limit = math.max(math.floor(req:number_arg("limit", 10)), 0)
  local window = math.max(math.floor(req:number_arg("window", 1)), 1)
  local count, reset = ratelimit.hit("limited:" .. key, window)
  local remaining = math.max(limit - count, 0)
  local status = count > limit and 429 or 200
  record(key, status, arrived)

  ratelimit.set_headers(limit, remaining, reset)
  if status == 429 then
    return respond.raw(429, json.encode({ detail = respond.rate_limit_detail(limit, window) }),
      "text/html")
  end
  local body_ms = req:number_arg("body_ms")
  if body_ms then
    return held_back_json('{"ok":true,', '"count":' .. count .. ',"remaining":' .. remaining .. '}', body_ms)
  end
  return respond.json(200, { ok = true, count = count, remaining = remaining })
end

-- GET /api/0/fake/slow/?ms=N, or ?body_ms=N to stall in the middle of the body.
function control.slow(req)
  local body_ms = req:number_arg("body_ms")
  if body_ms then return held_back_json('{"part":1,', '"done":true}', body_ms) end
  local ms = req:number_arg("ms", 0)
  ngx.sleep(ms / 1000)
  return respond.json(200, { ok = true, slept_ms = ms })
end

-- GET /api/0/fake/items/?total=N[&ms=M]: N tiny items, paginated like Sentry
-- lists; each page takes M milliseconds.
function control.items(req)
  local total = math.max(math.floor(req:number_arg("total", 1000)), 0)
  local ms = req:number_arg("ms", 0)
  if ms > 0 then ngx.sleep(math.min(ms, 10000) / 1000) end
  return respond.json(200, pagination.paginate(req.origin, req.args, total, function(i)
    return { id = tostring(i), n = i }
  end))
end

-- GET /api/0/fake/chunked/?chunks=N: a JSON array sent piece by piece, with
-- chunked transfer encoding because the length is not known up front.
function control.chunked(req)
  local chunks = math.max(math.floor(req:number_arg("chunks", 5)), 0)
  ngx.header["Content-Type"] = "application/json"
  ngx.print("[")
  ngx.flush(true)
  for i = 1, chunks do
    ngx.print((i > 1 and "," or "") .. json.encode({ chunk = i, data = string.rep("x", 32) }))
    ngx.flush(true)
    ngx.sleep(0.002)
  end
  ngx.print("]")
end

-- Above the client's default max_body_bytes (64 MiB), so that limit can be hit.
local MAX_BIG_BYTES = 80 * 1024 * 1024

-- GET /api/0/fake/big/?bytes=N: {"data":"xxx..."}, exactly N bytes (N >= 11).
function control.big(req)
  local bytes = math.min(math.max(math.floor(req:number_arg("bytes", 1024 * 1024)), 11), MAX_BIG_BYTES)
  local wrapper_open, wrapper_close = '{"data":"', '"}'
  local filler = bytes - #wrapper_open - #wrapper_close
  return respond.raw(200, wrapper_open .. string.rep("x", filler) .. wrapper_close,
    "application/json")
end

function control.invalid_json()
  return respond.raw(200, '{"detail": "this body is cut sho', "application/json")
end

function control.text()
  return respond.raw(200, "This is plain text, not JSON.\n", "text/plain")
end

-- Sentry's ProjectMoved: a 302 whose body says where the resource went.
-- ?status= another redirect status; ?relative=1 a Location without origin;
-- ?loop=1 a Location that points back here.
function control.moved(req)
  local location = req.origin .. "/api/0/fake/echo/moved-target/"
  if req:arg("relative") == "1" then location = "/api/0/fake/echo/moved-target/" end
  if req:arg("loop") == "1" then location = req.origin .. "/api/0/fake/moved/?loop=1" end
  if req:arg("to") then location = req:arg("to") end -- any reference, resolved by the client
  return respond.json(status_arg(req, "status", 302), { detail = {
    code = "resource-moved",
    message = "Resource has been moved",
    extra = { url = location, slug = "moved-target" },
  } }, { Location = location })
end

-- A redirect to another origin (localhost instead of 127.0.0.1): a client must
-- not carry the token there. The scheme stays, so it works on the TLS port too.
function control.redirect_offsite(req)
  local status = status_arg(req, "status", 302)
  local location = string.format("%s://localhost:%s/api/0/fake/echo/", ngx.var.scheme,
    ngx.var.server_port)
  return respond.json(status, { location = location }, { Location = location })
end

-- GET /api/0/fake/huge-header/?bytes=N[&count=C]: C header lines (default 1)
-- "X-Fake-Huge: hhh..." of N bytes each.
function control.huge_header(req)
  local bytes = math.max(math.floor(req:number_arg("bytes", 10 * 1024)), 1)
  local count = math.min(math.max(math.floor(req:number_arg("count", 1)), 1), 1000)
  local value = string.rep("h", bytes)
  local values = value
  if count > 1 then
    values = {}
    for i = 1, count do values[i] = value end
  end
  return respond.json(200, { ok = true, bytes = bytes, count = count }, { ["X-Fake-Huge"] = values })
end

-- Well-formed header lines with values no parser should trust; with ?raw=1 a
-- response whose header section is not HTTP at all.
function control.garbage_header(req)
  if req:arg("raw") == "1" then
    local socket = assert(ngx.req.socket(true))
    socket:send("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
      .. "this line has no colon\r\n\1\2\255: binary\r\nContent-Length: 2\r\n\r\n{}")
    return
  end
  return respond.json(200, { ok = true }, {
    ["X-Sentry-Rate-Limit-Limit"] = "lots",
    ["X-Sentry-Rate-Limit-Remaining"] = "-5",
    ["X-Sentry-Rate-Limit-Reset"] = "soon",
    ["X-Sentry-Rate-Limit-ConcurrentLimit"] = "1e999",
    ["X-Sentry-Rate-Limit-ConcurrentRemaining"] = "0x10",
    ["Retry-After"] = "whenever",
    ["Link"] = '<broken; rel="next"; results=maybe, <>; cursor=',
    ["X-Fake-Binary"] = "\128\254\255 value",
  })
end

-- GET /api/0/fake/cut-headers/?status=N: the status line and a rate-limit
-- window 260 years long, then the connection closes before the blank line
-- that ends the header section: the response is incomplete.
function control.cut_headers(req)
  local socket = assert(ngx.req.socket(true))
  socket:send("HTTP/1.1 " .. (tonumber(req:arg("status")) or 200) .. " OK\r\n"
    .. "Content-Type: application/json\r\nX-Sentry-Rate-Limit-Limit: 10\r\n"
    .. "X-Sentry-Rate-Limit-Remaining: 0\r\nX-Sentry-Rate-Limit-Reset: " .. (ngx.time() + 260 * 365 * 86400)
    .. "\r\nX-Sentry-Rate-Limit-Concurrent")
  return ngx.exit(444)
end

-- ANY /api/0/fake/echo-token/: a 401 that quotes the request's bearer token
-- as a careless self-hosted server or proxy might: as is, percent-encoded and
-- base64-encoded, in the body and in a header.
function control.echo_token()
  local credential = (ngx.var.http_authorization or ""):match("^Bearer (.*)$") or ""
  local percent = credential:gsub("[^%w%-%._~]", function(c) return string.format("%%%02X", c:byte()) end)
  return respond.json(401, {
    detail = "Invalid token '" .. credential .. "'",
    token = credential,
    percent_encoded = "?token=" .. percent,
    basic = "Basic " .. ngx.encode_base64("user:" .. credential),
    [credential] = "as a key too",
  }, { ["X-Echo-Token"] = credential, ["X-Echo-Base64"] = ngx.encode_base64(credential) })
end

-- GET /api/0/fake/resource/: an object with the shapes a client must keep
-- when it sends the object back: empty arrays, an empty object, a 16-digit id.
function control.resource()
  return respond.raw(200, '{"id":4506891234567890,"name":"web","projects":[],"environments":[ ],'
    .. '"options":{},"nested":{"refs":[],"note":"a [] in a string"},"ratio":0.1}', "application/json")
end

-- GET /api/0/fake/hostile/{case}/: responses an adversarial server could send.
--   html?unit=U&bytes=N: a 502 text/html page of U repeated to N bytes;
--   content-type?value=V: a 200 JSON list whose Content-Type header is V, sent
--     as is (nginx would not send an empty one);
--   headers?count=N|spaces=N: a 200 with N repeated header lines, or one
--     header value with N inner spaces;
--   field-errors: a 400 whose field errors hold a null;
--   moved?url=JSON: a 301 whose detail.extra.url is that JSON value;
--   link?value=V[&status=S]: a JSON list with the Link header V.
function control.hostile(req, case)
  if case == "html" then
    local unit = req:arg("unit") or "<title"
    local bytes = math.min(math.max(math.floor(req:number_arg("bytes", 120 * 1024)), 1), MAX_BIG_BYTES)
    return respond.raw(502, string.rep(unit, math.ceil(bytes / #unit)):sub(1, bytes), "text/html")
  elseif case == "content-type" then
    local socket = assert(ngx.req.socket(true))
    socket:send("HTTP/1.1 200 OK\r\nContent-Type: " .. (req:arg("value") or "")
      .. "\r\nContent-Length: 2\r\nConnection: close\r\n\r\n[]")
    return
  elseif case == "headers" then
    -- ?count=N lines "R:a", or ?spaces=N: one value with N inner spaces
    local lines = {}
    local spaces = req:number_arg("spaces")
    if spaces then lines[1] = "X-Fake-Spaced: a" .. string.rep(" ", spaces) .. "b  \r\n" end
    lines[#lines + 1] = string.rep("R:a\r\n", math.floor(req:number_arg("count", 0)))
    local socket = assert(ngx.req.socket(true))
    socket:send("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n"
      .. "Connection: close\r\n" .. table.concat(lines) .. "\r\n[]")
    return
  elseif case == "field-errors" then
    return respond.raw(400, '{"name": ["a", null], "slug": [{"nested": true}, 7]}', "application/json")
  elseif case == "moved" then
    return respond.raw(301, '{"detail": {"code": "resource-moved", "message": "Resource has been moved", '
      .. '"extra": {"url": ' .. (req:arg("url") or "null") .. '}}}', "application/json")
  elseif case == "link" then
    return respond.raw(status_arg(req, "status", 200), '[{"id": "1"}]', "application/json",
      { Link = req:arg("value") })
  end
  respond.bad_request("Unknown hostile case " .. tostring(case) .. ".")
end

-- Closes the connection without sending anything (nginx's special 444).
function control.close()
  return ngx.exit(444)
end

-- Promises more body than it sends, then hangs up. With ?chunked=1 the body
-- is chunked and the connection closes before the last (zero-size) chunk.
function control.truncated(req)
  ngx.header["Content-Type"] = "application/json"
  if req:arg("chunked") ~= "1" then ngx.header["Content-Length"] = 1000 end
  ngx.print('{"partial": "only part of the promised body')
  ngx.flush(true)
  return ngx.exit(444)
end

-- GET /api/0/fake/reset/?after=none|headers|body: hangs up with a TCP reset
-- (RST, not FIN): before answering, after the headers, or in the middle of
-- the body. nginx.conf sets reset_timedout_connection for this location.
function control.reset(req)
  local after = req:arg("after") or "none"
  if after == "headers" or after == "body" then
    ngx.header["Content-Type"] = "application/json"
    ngx.header["Content-Length"] = 1000
    ngx.send_headers()
    if after == "body" then ngx.print('{"partial": "cut off by a reset') end
    ngx.flush(true)
  end
  return ngx.exit(444)
end

-- GET /api/0/fake/overlong/: a Content-Length smaller than the body that
-- follows it; the extra bytes must not be read as the next response.
function control.overlong()
  local socket = assert(ngx.req.socket(true))
  socket:send("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n"
    .. '{"ok":true}HTTP/1.1 200 OK\r\nContent-Length: 17\r\n\r\n{"smuggled":true}')
end

-- GET /api/0/fake/drip/?where=headers|body[&interval_ms=N][&bytes=N]: a
-- response sent one byte at a time, interval_ms (default 200) apart: the status
-- line and headers, or the N-byte body (default 50) after headers sent at once.
-- Each byte arrives well within any idle timeout; only a total deadline ends it.
function control.drip(req)
  local interval = req:number_arg("interval_ms", 200) / 1000
  local bytes = math.max(math.floor(req:number_arg("bytes", 50)), 2)
  local body = '"' .. string.rep("d", bytes - 2) .. '"'
  local head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " .. bytes .. "\r\n\r\n"
  local socket = assert(ngx.req.socket(true))
  local dripped = head .. body
  if req:arg("where") == "body" then
    socket:send(head)
    dripped = body
  end
  for i = 1, #dripped do
    if not socket:send(dripped:sub(i, i)) then return end
    ngx.sleep(interval)
  end
end

-- GET /api/0/fake/endless/: a body without Content-Length or chunks (it ends
-- when the connection closes) that never ends: 16 KiB every 10 ms for a minute.
function control.endless()
  local socket = assert(ngx.req.socket(true))
  socket:send("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n")
  local piece = string.rep("e", 16384)
  for _ = 1, 6000 do
    if not socket:send(piece) then return end
    ngx.sleep(0.01)
  end
end

-- GET /api/0/fake/interim/?status=103|100[&count=N]: N (default 1) interim
-- responses (103 Early Hints, 100 Continue) before the final 200; a client that
-- stops at the first one leaves the 200 unread on the connection.
function control.interim(req)
  local status = req:number_arg("status", 103)
  local count = math.min(math.max(math.floor(req:number_arg("count", 1)), 0), 1000)
  local interim = status == 100 and "HTTP/1.1 100 Continue\r\n\r\n"
    or "HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload; as=style\r\n\r\n"
  local socket = assert(ngx.req.socket(true))
  socket:send(string.rep(interim, count)
    .. 'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 21\r\n\r\n{"ok":true,"final":1}')
end

-- GET /api/0/fake/hangup-next/: a complete response on a connection kept
-- alive, then the next request on that connection is read and the connection
-- closed without an answer, as a server does when its keep-alive ends.
function control.hangup_next()
  local socket = assert(ngx.req.socket(true))
  socket:send('HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{"ok":true}')
  socket:settimeout(5000)
  repeat
    local line = socket:receive("*l")
  until not line or line == ""
end

-- GET /api/0/fake/concurrency/?ms=N[&limit=C][&stale_reset=1]: holds the request so overlaps show
-- up in /__fake/stats (max_in_flight). With limit, it announces a concurrency
-- limit of C like sentry.io (ConcurrentLimit/ConcurrentRemaining) and answers
-- 429 to a request beyond it. With stale_reset, a window that ended long ago
-- (Limit 40, Remaining 39, Reset in 2023), as a broken proxy or cache may send.
function control.concurrency(req)
  local in_flight = state.in_flight()
  local limit = req:number_arg("limit")
  if req:arg("stale_reset") then
    ngx.header["X-Sentry-Rate-Limit-Limit"] = 40
    ngx.header["X-Sentry-Rate-Limit-Remaining"] = 39
    ngx.header["X-Sentry-Rate-Limit-Reset"] = 1700000000
  end
  if limit then
    ngx.header["X-Sentry-Rate-Limit-ConcurrentLimit"] = limit
    ngx.header["X-Sentry-Rate-Limit-ConcurrentRemaining"] = math.max(limit - in_flight, 0)
    if in_flight > limit then
      return respond.raw(429, json.encode({ detail = "You are attempting to go above the allowed concurrency "
        .. "for this endpoint. Concurrency limit is " .. limit }), "text/html")
    end
  end
  ngx.sleep(req:number_arg("ms", 100) / 1000)
  return respond.json(200, { in_flight_at_start = in_flight, max_in_flight = state.max_in_flight() })
end

return control
