-- Sending responses, and aborting a handler with an error response.
-- luacheck: globals ngx

local json = require "fake_sentry.json"

local respond = {}

local function set_headers(headers)
  for name, value in pairs(headers or {}) do
    ngx.header[name] = value
  end
end

-- Sends a body as is. 204 and 304 never carry one.
function respond.raw(status, body, content_type, headers)
  ngx.status = status
  set_headers(headers)
  if status == 204 or status == 304 then
    -- These must not even say "Content-Length: 0".
    return ngx.send_headers()
  end
  if body == nil then
    ngx.header["Content-Length"] = 0
    return ngx.send_headers()
  end
  ngx.header["Content-Type"] = content_type
  ngx.header["Content-Length"] = #body
  ngx.print(body)
end

function respond.json(status, value, headers)
  return respond.raw(status, json.encode(value), "application/json", headers)
end

-- Handlers call respond.abort(...) from any depth; the router catches it and
-- sends the response (see respond.send_abort).
local ABORT = {}

function respond.abort(status, value, headers, content_type)
  error(setmetatable({ status = status, value = value, headers = headers,
                       content_type = content_type }, ABORT), 0)
end

function respond.is_abort(err)
  return getmetatable(err) == ABORT
end

function respond.send_abort(err)
  if err.content_type then
    return respond.raw(err.status, json.encode(err.value), err.content_type, err.headers)
  end
  return respond.json(err.status, err.value, err.headers)
end

-- The error bodies Sentry sends for the common cases.
respond.NOT_FOUND = "The requested resource does not exist"
respond.FORBIDDEN = "You do not have permission to perform this action."

function respond.not_found()
  respond.abort(404, { detail = respond.NOT_FOUND })
end

function respond.forbidden()
  respond.abort(403, { detail = respond.FORBIDDEN })
end

function respond.bad_request(detail)
  respond.abort(400, { detail = detail })
end

-- Django sends a 429 with its default content type, text/html, although the
-- body is JSON; clients must not trust the content type.
function respond.too_many_requests(detail, headers)
  respond.abort(429, { detail = detail }, headers, "text/html")
end

function respond.rate_limit_detail(limit, window)
  return string.format("You are attempting to use this endpoint too frequently. "
    .. "Limit is %d requests in %d seconds", limit, window)
end

return respond
