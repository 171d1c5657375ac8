-- Fixed-window rate limiting with Sentry's X-Sentry-Rate-Limit-* headers.
-- luacheck: globals ngx

local respond = require "fake_sentry.respond"
local state = require "fake_sentry.state"

local ratelimit = {}

-- Generous on purpose: the real-shaped routes should never limit a normal
-- test; /api/0/fake/limited/ is the route for exercising limits.
ratelimit.API_LIMIT = 1000
ratelimit.API_WINDOW = 10
ratelimit.API_CONCURRENT_LIMIT = 25

function ratelimit.now()
  ngx.update_time()
  return ngx.now()
end

-- Counts one request in the window of `window` seconds that contains now
-- (windows start at multiples of `window` since the epoch). Returns the count
-- so far in this window and the window's end as a Unix time.
function ratelimit.hit(key, window)
  local index = math.floor(ratelimit.now() / window)
  local count = state.incr("window:" .. key .. ":" .. index, 1, window + 1)
  return count, (index + 1) * window
end

function ratelimit.set_headers(limit, remaining, reset, concurrent_limit, concurrent_remaining)
  ngx.header["X-Sentry-Rate-Limit-Limit"] = limit
  ngx.header["X-Sentry-Rate-Limit-Remaining"] = remaining
  ngx.header["X-Sentry-Rate-Limit-Reset"] = reset
  ngx.header["X-Sentry-Rate-Limit-ConcurrentLimit"] = concurrent_limit
  ngx.header["X-Sentry-Rate-Limit-ConcurrentRemaining"] = concurrent_remaining
end

-- Limits per caller, route and method, like sentry.io. Sets the headers and
-- raises a 429 when over a limit. The concurrency slot taken here is given back
-- by ratelimit.release() in the log phase.
function ratelimit.check_api(caller_key, route_name, method)
  local key = caller_key .. "|" .. route_name .. "|" .. method
  local count, reset = ratelimit.hit(key, ratelimit.API_WINDOW)
  local concurrent_key = "concurrent:" .. key
  local concurrent = state.incr(concurrent_key)
  ngx.ctx.concurrent_key = concurrent_key

  ratelimit.set_headers(ratelimit.API_LIMIT, math.max(ratelimit.API_LIMIT - count, 0), reset,
    ratelimit.API_CONCURRENT_LIMIT, math.max(ratelimit.API_CONCURRENT_LIMIT - concurrent, 0))

  if count > ratelimit.API_LIMIT then
    respond.too_many_requests(respond.rate_limit_detail(ratelimit.API_LIMIT, ratelimit.API_WINDOW))
  end
  if concurrent > ratelimit.API_CONCURRENT_LIMIT then
    respond.too_many_requests(string.format("You are attempting to go above the allowed "
      .. "concurrency for this endpoint. Concurrency limit is %d", ratelimit.API_CONCURRENT_LIMIT))
  end
end

function ratelimit.release()
  local key = ngx.ctx.concurrent_key
  -- A reset in between may already have zeroed the counter.
  if key and (state.get(key) or 0) > 0 then state.incr(key, -1) end
end

return ratelimit
