--- The clients of the network-shaped benchmark (TLS, an added round-trip
-- time), each used the way its users use it, each timing one workload:
--
--     lua network.lua CLIENT WORKLOAD URL CA_FILE
--
-- prints "seconds=<wall> cpu=<process CPU> count=<requests>" like clients.lua,
-- or a message on stderr and exit status 1. Nothing is warmed up: the client
-- is new, so its first connection and TLS handshake count, as they do for
-- its users. Workloads:
--
--   seq     20 sequential GETs of the 2 KiB list
--   pages   1 000 items in 10 pages of 100, the consumer spending 5 ms a page
--   detail  100 GETs, at most 25 at a time (Sentry's ConcurrentLimit)
--
-- Clients: module (client:get, client:paginate with prefetch, client:batch), curl (the curl
-- CLI, one process per request), luasec (ssl.https, a connection per request),
-- luahttp (lua-http, a connection per request, cqueues for concurrency),
-- luacurl (Debian's lua-curl, one reused easy handle; it has no multi API).
local client_name, workload, base, ca_file = arg[1], arg[2], arg[3], arg[4]
if not (client_name and workload and base and ca_file) then
  io.stderr:write("usage: network.lua CLIENT WORKLOAD URL CA_FILE\n")
  os.exit(2)
end

local socket = require "socket"
local now, sleep = socket.gettime, socket.sleep

local TOKEN = "sntryu_" .. ("a"):rep(64)
local LIST = "/api/0/organizations/acme/projects/"
local SEQUENTIAL, DETAILS, CONCURRENT = 20, 100, 25
local ITEMS, CONSUMER_SECONDS = 1000, 0.005
local PAGES_PATH = "/api/0/bench/items/?total=" .. ITEMS .. "&per_page=100"

local function fail(message)
  io.stderr:write("network.lua ", client_name, " ", workload, ": ", tostring(message), "\n")
  os.exit(1)
end

local function detail_path(i) return LIST .. "?detail=" .. i end

-- The next page's URL from a Sentry Link header (what every peer has to do by hand).
local function next_url(link)
  return link and link:match('<([^>]+)>; rel="next"; results="true"')
end

-- A peer's whole walk: get(url) returns the body and the Link header.
local function walk_pages(get)
  local url, items = base .. PAGES_PATH, 0
  while url do
    local body, link = get(url)
    local page = require("cjson").decode(body)
    items = items + #page
    sleep(CONSUMER_SECONDS) -- the consumer's work on this page
    url = next_url(link)
  end
  if items ~= ITEMS then fail("got " .. items .. " items, not " .. ITEMS) end
  return 10
end

local function check_list(body)
  if #require("cjson").decode(body) ~= 3 then fail("unexpected response") end
end

local clients = {}

function clients.module()
  local sentry = require "sentry"
  local client, err = sentry.new { token = TOKEN, base_url = base, config = false, timeout = 10, ca_file = ca_file }
  if not client then fail(err) end
  return {
    seq = function()
      for _ = 1, SEQUENTIAL do
        local res, why = client:get(LIST)
        if not res or res.status ~= 200 or #res.body ~= 3 then fail(why or "unexpected response") end
      end
      return SEQUENTIAL
    end,
    pages = function()
      local items = 0
      for item in client:paginate(PAGES_PATH, { prefetch = true }) do
        items = items + 1
        if item.id == nil then fail("item without id") end
        if items % 100 == 0 then sleep(CONSUMER_SECONDS) end
      end
      if items ~= ITEMS then fail("got " .. items .. " items, not " .. ITEMS) end
      return 10
    end,
    detail = function()
      local requests = {}
      for i = 1, DETAILS do requests[i] = { "GET", detail_path(i) } end
      for _, result in ipairs(client:batch(requests, { concurrency = CONCURRENT })) do
        if not result.res or result.res.status ~= 200 then fail(result.err or "unexpected response") end
      end
      return DETAILS
    end,
  }
end

-- 30 s, not 10: with 25 processes starting at once on one busy core, a
-- curl's own start-up can take seconds.
local CURL = "curl -s -f --max-time 30 --cacert '" .. ca_file .. "' -H 'Authorization: Bearer " .. TOKEN
  .. "' -H 'Accept: application/json'"

function clients.curl()
  -- one curl process per request, as plenary.curl and shell scripts run it
  local function get(url)
    local pipe = assert(io.popen(CURL .. " '" .. url .. "' -D - 2>/dev/null"))
    local out = pipe:read("*a")
    pipe:close()
    local head, body = out:match("^(.-\r\n)\r\n(.*)$")
    if not head then fail("curl failed for " .. url) end
    return body, head:match("\n[Ll]ink: ([^\r\n]*)")
  end
  return {
    seq = function()
      for _ = 1, SEQUENTIAL do check_list((get(base .. LIST))) end
      return SEQUENTIAL
    end,
    pages = function() return walk_pages(get) end,
    detail = function()
      -- 25 curl processes at a time, as a shell script does with xargs -P;
      -- each URL is appended (-n 1), as `-I N` would also replace an N in the
      -- CA file's random path
      local urls = {}
      for i = 1, DETAILS do urls[i] = base .. detail_path(i) end
      local list = os.tmpname()
      local file = assert(io.open(list, "wb"))
      file:write(table.concat(urls, "\n"), "\n")
      file:close()
      local ok = os.execute("xargs -P " .. CONCURRENT .. " -n 1 " .. CURL .. " -o /dev/null"
        .. " < '" .. list .. "'")
      os.remove(list)
      if ok ~= true and ok ~= 0 then fail("curl failed") end
      return DETAILS
    end,
  }
end

function clients.luasec()
  local https, ltn12 = require "ssl.https", require "ltn12"
  https.TIMEOUT = 10
  local headers = { authorization = "Bearer " .. TOKEN, accept = "application/json" }
  local function get(url)
    local chunks = {}
    local ok, status, response_headers = https.request { url = url, headers = headers, cafile = ca_file,
      verify = "peer", protocol = "any", sink = ltn12.sink.table(chunks) }
    if not ok or status ~= 200 then fail(tostring(status)) end
    return table.concat(chunks), response_headers.link
  end
  return {
    seq = function()
      for _ = 1, SEQUENTIAL do check_list((get(base .. LIST))) end
      return SEQUENTIAL
    end,
    pages = function() return walk_pages(get) end,
    detail = function() -- no concurrency without a scheduler such as copas
      for i = 1, DETAILS do check_list((get(base .. detail_path(i)))) end
      return DETAILS
    end,
  }
end

function clients.luahttp()
  local request, tls, x509 = require "http.request", require "http.tls", require "openssl.x509"
  local cqueues = require "cqueues"
  local file = assert(io.open(ca_file, "rb"))
  local context = tls.new_client_context()
  context:getStore():add(x509.new(file:read("*a")))
  file:close()
  local function get(url)
    local req = request.new_from_uri(url)
    req.ctx = context
    req.headers:upsert("authorization", "Bearer " .. TOKEN)
    req.headers:upsert("accept", "application/json")
    local headers, stream = req:go(10)
    if not headers then fail(tostring(stream)) end
    local body = stream:get_body_as_string(10)
    if headers:get(":status") ~= "200" or not body then fail("status " .. tostring(headers:get(":status"))) end
    stream:shutdown()
    return body, headers:get("link")
  end
  local function in_loop(work)
    local loop = cqueues.new()
    loop:wrap(work)
    local ok, err = loop:loop()
    if not ok then fail(err) end
  end
  return {
    seq = function()
      in_loop(function() for _ = 1, SEQUENTIAL do check_list((get(base .. LIST))) end end)
      return SEQUENTIAL
    end,
    pages = function()
      in_loop(function() walk_pages(get) end)
      return 10
    end,
    detail = function()
      local loop, next_index = cqueues.new(), 0
      for _ = 1, CONCURRENT do
        loop:wrap(function()
          while next_index < DETAILS do
            next_index = next_index + 1
            check_list((get(base .. detail_path(next_index))))
          end
        end)
      end
      local ok, err = loop:loop()
      if not ok then fail(err) end
      return DETAILS
    end,
  }
end

function clients.luacurl()
  local curl = require "curl"
  local easy = curl.easy_init()
  local chunks, head, n = {}, {}, 0
  easy:setopt(curl.OPT_TIMEOUT, 10)
  easy:setopt(curl.OPT_CAINFO, ca_file)
  easy:setopt(curl.OPT_HTTPHEADER, { "Authorization: Bearer " .. TOKEN, "Accept: application/json" })
  easy:setopt(curl.OPT_WRITEFUNCTION, function(data)
    n = n + 1
    chunks[n] = data
    return #data
  end)
  easy:setopt(curl.OPT_HEADERFUNCTION, function(line)
    head[#head + 1] = line
    return #line
  end)
  local function get(url)
    n, head = 0, {}
    easy:setopt(curl.OPT_URL, url)
    local ok, message = easy:perform()
    if ok ~= 0 and ok ~= true then fail(message) end
    return table.concat(chunks, "", 1, n), table.concat(head):match("\n[Ll]ink: ([^\r\n]*)")
  end
  return {
    seq = function()
      for _ = 1, SEQUENTIAL do check_list((get(base .. LIST))) end
      return SEQUENTIAL
    end,
    pages = function() return walk_pages(get) end,
    detail = function() -- no multi API in this binding: one at a time
      for i = 1, DETAILS do check_list((get(base .. detail_path(i)))) end
      return DETAILS
    end,
  }
end

local make = clients[client_name] or fail("unknown client")
local run = make()[workload] or fail("unknown workload")
collectgarbage()
local started, cpu = now(), os.clock()
local count = run()
io.write(string.format("seconds=%.6f cpu=%.6f count=%d\n", now() - started, os.clock() - cpu, count))
