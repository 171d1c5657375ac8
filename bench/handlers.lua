-- Lua handlers of the benchmark server (see nginx.conf): paginated items,
-- a slow endpoint and a rate-limited one.
-- luacheck: globals ngx

local handlers = {}

local PER_PAGE = 100

-- One item of a Sentry-shaped list (an issue), about 200 bytes.
local ITEM = '{"id":"%d","shortId":"WEB-%d","title":"TypeError: Cannot read properties of undefined",'
  .. '"culprit":"app/components/list.tsx","level":"error","status":"unresolved",'
  .. '"count":"%d","userCount":%d,"firstSeen":"2024-03-01T10:00:00Z"}'

local function origin()
  -- HTTP/2 clients send :authority, which nginx 1.22 does not turn into $http_host
  return ngx.var.scheme .. "://" .. (ngx.var.http_host or ngx.var.host .. ":" .. ngx.var.server_port)
end

local function link(base, rel, cursor, results)
  return string.format('<%s&cursor=%s>; rel="%s"; results="%s"; cursor="%s"', base, cursor, rel,
    results and "true" or "false", cursor)
end

function handlers.items()
  local args = ngx.req.get_uri_args()
  local total = tonumber(args.total) or 1000
  local per_page = math.min(tonumber(args.per_page) or PER_PAGE, PER_PAGE)
  local offset = tonumber(type(args.cursor) == "string" and args.cursor:match("^[^:]*:(%d+):") or 0)
  local parts = {}
  for i = offset + 1, math.min(offset + per_page, total) do
    parts[#parts + 1] = string.format(ITEM, i, i, i * 3, i % 97)
  end
  local base = origin() .. ngx.var.uri .. "?total=" .. total .. "&per_page=" .. per_page
  ngx.header["Link"] = link(base, "previous", string.format("0:%d:1", math.max(offset - per_page, 0)), offset > 0)
    .. ", " .. link(base, "next", string.format("0:%d:0", offset + per_page), offset + per_page < total)
  ngx.header["X-Sentry-Rate-Limit-Limit"] = 40
  ngx.header["X-Sentry-Rate-Limit-Remaining"] = 39
  ngx.header["X-Sentry-Rate-Limit-Reset"] = ngx.time() + 1
  ngx.print("[", table.concat(parts, ","), "]")
end

function handlers.slow()
  ngx.sleep(0.02)
  ngx.print('{"ok":true}')
end

function handlers.limited()
  local key = ngx.var.arg_key or "default"
  local seen = ngx.shared.bench:incr(key, 1, 0)
  if seen == 1 then
    ngx.status = 429
    ngx.header["Retry-After"] = 2
    ngx.header["Content-Type"] = "text/html"
    ngx.print('{"detail":"You are attempting to use this endpoint too frequently. Limit is 40 requests in 1 seconds"}')
    return
  end
  ngx.print('{"ok":true}')
end

-- Per port: connections, TLS handshakes (full or resumed) and requests.
function handlers.count()
  if ngx.var.uri == "/api/0/bench/stats/" then return end
  local counts, port = ngx.shared.bench_counts, ngx.var.server_port
  counts:incr(port .. ":requests", 1, 0)
  -- $connection is the TCP connection's serial number, the same for every
  -- HTTP/2 stream on it
  if counts:add("seen:" .. ngx.var.connection, true, 600) then
    counts:incr(port .. ":connections", 1, 0)
    if ngx.var.https == "on" then counts:incr(port .. ":handshakes", 1, 0) end
  end
end

function handlers.stats()
  local counts, port = ngx.shared.bench_counts, ngx.var.arg_port or ngx.var.server_port
  local values = {}
  for _, name in ipairs { "connections", "handshakes", "requests" } do
    values[#values + 1] = string.format('"%s":%d', name, counts:get(port .. ":" .. name) or 0)
    counts:delete(port .. ":" .. name)
  end
  ngx.print("{", table.concat(values, ","), "}")
end

-- GET /bench/admission?n=N: what an admission costs in a lua_shared_dict.
function handlers.admission()
  local count = tonumber(ngx.var.arg_n) or 10000
  local cpu_us, wall_us = require("admission_cost").measure({ shared_dict = "bench_budget" }, count)
  ngx.say(string.format("cpu_us=%.2f wall_us=%.2f", cpu_us, wall_us))
end

return handlers
