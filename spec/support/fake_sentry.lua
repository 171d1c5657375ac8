-- The fake Sentry server for the specs: nginx with the Lua module, configured
-- from spec/support/fake_sentry/nginx.conf, serving spec/support/fake_sentry/*.lua.
--
--   local fake = require "fake_sentry"
--   local server = fake.start()   -- { url, api, https_url, port, https_port, prefix, ... }
--   fake.reset(); fake.stats(); fake.requests("key")
--
-- Plain Lua (io and os only) so that it runs under every Lua the client is
-- built for. Talking to the server goes through the curl command line, never
-- through the client under test.

local shell = require "shell"

local fake = {}

-- The running server lives in the registry, not in this module: busted's
-- insulation unloads modules between spec files, and the server must survive.
local REGISTRY_KEY = "sentry-lua fake_sentry"

local PORT_ATTEMPTS = 20
local READY_POLLS = 100 -- 50 ms apart: give up after about 5 seconds
local STOP_POLLS = 100

local quote, run, capture = shell.quote, shell.run, shell.capture

local function trim(s)
  return (s:gsub("^%s+", ""):gsub("%s+$", ""))
end

local read_file, write_file = shell.read_file, shell.write_file

local function sleep(seconds)
  run("sleep " .. seconds)
end

-- The absolute path of spec/support/, found from this file's own path.
local support_dir_cache
local function support_dir()
  if support_dir_cache then return support_dir_cache end
  local source = debug.getinfo(1, "S").source
  local dir = source:match("^@(.*)/fake_sentry%.lua$")
  if not dir then
    dir = source:match("^@fake_sentry%.lua$") and "." or "spec/support"
  end
  if dir:sub(1, 1) ~= "/" then dir = trim(capture("pwd")) .. "/" .. dir end
  support_dir_cache = dir:gsub("/%./", "/"):gsub("/%.$", "")
  return support_dir_cache
end

local function find_nginx()
  local configured = os.getenv("NGINX")
  if configured and configured ~= "" then return configured end
  local found = trim(capture("command -v nginx 2>/dev/null"))
  if found ~= "" then return found end
  -- /usr/sbin is often missing from PATH for ordinary users.
  if read_file("/usr/sbin/nginx") then return "/usr/sbin/nginx" end
  error("fake_sentry: nginx not found (install it, or set NGINX)", 3)
end

local seeded = false
local function random_port()
  if not seeded then
    -- Several spec processes may start in the same second: mix in the pid
    -- (the popen'd shell's parent is this process) and an address.
    local pid = tonumber(trim(capture("echo $PPID"))) or 0
    local address = tonumber(tostring({}):match("0x(%x+)") or "0", 16) or 0
    math.randomseed((os.time() + pid * 7919 + address % 1000003) % 2147483647)
    seeded = true
  end
  return math.random(20000, 59999)
end

local function make_prefix()
  -- os.tmpname() reserves a unique name; the directory sits beside it.
  local reserved = os.tmpname()
  local prefix = reserved .. "-fake-sentry"
  assert(run("mkdir -m 0755 " .. quote(prefix) .. " && mkdir " .. quote(prefix .. "/tmp")),
    "fake_sentry: cannot create " .. prefix)
  os.remove(reserved)
  -- Marks the directory as ours, so stop() never removes anything else.
  write_file(prefix .. "/.fake-sentry", "")
  return prefix
end

-- A self-signed certificate for 127.0.0.1 and localhost; false without openssl.
local function make_certificate(prefix)
  local cert, key = prefix .. "/cert.pem", prefix .. "/key.pem"
  local command = "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"
    .. " -keyout " .. quote(key) .. " -out " .. quote(cert)
    .. " -days 7 -subj /CN=127.0.0.1 >/dev/null 2>&1"
  local with_names = command:gsub("-days 7",
    "-days 7 -addext subjectAltName=IP:127.0.0.1,DNS:localhost", 1)
  if run(with_names) or run(command) then return cert, key end
  return false
end

local function render_config(prefix, port, tls_port, cert, key)
  local template = assert(read_file(support_dir() .. "/fake_sentry/nginx.conf"),
    "fake_sentry: missing fake_sentry/nginx.conf")
  local tls = ""
  if tls_port then
    tls = "    listen 127.0.0.1:" .. tls_port .. " ssl;\n"
      .. "    ssl_certificate " .. cert .. ";\n"
      .. "    ssl_certificate_key " .. key .. ";"
  end
  local values = {
    PREFIX = prefix,
    PORT = tostring(port),
    TLS_LISTEN = tls,
    SUPPORT_DIR = support_dir(),
    -- As root, nginx would run its worker as nobody, who may not be allowed to
    -- read the checkout.
    USER = trim(capture("id -u")) == "0" and "user root;" or "",
  }
  return (template:gsub("%${([%w_]+)}", function(name)
    return assert(values[name], "fake_sentry: unknown placeholder " .. name)
  end))
end

-- A process that exited but was not reaped yet (a zombie) counts as gone:
-- nginx's master is reparented to init, which may reap it only seconds later.
local function is_alive(pid)
  return pid ~= nil and run("kill -0 " .. pid .. " 2>/dev/null && ! ps -o stat= -p " .. pid
    .. " | grep -q '^Z'")
end

local function nginx_pid(prefix)
  return tonumber(trim(read_file(prefix .. "/nginx.pid") or ""))
end

local function answers(url)
  return capture("curl -s -o /dev/null -w '%{http_code}' --max-time 2 "
    .. quote(url .. "/__fake/stats") .. " 2>/dev/null") == "200"
end

-- Stops the nginx that runs in prefix (started by this module, maybe by
-- another process) and removes the prefix directory.
local function stop_prefix(prefix)
  if not read_file(prefix .. "/.fake-sentry") then return false end
  local pid = nginx_pid(prefix)
  if is_alive(pid) then
    run("kill -TERM " .. pid .. " 2>/dev/null")
    for _ = 1, STOP_POLLS do
      if not is_alive(pid) then break end
      sleep(0.05)
    end
  end
  run("rm -rf " .. quote(prefix))
  return true
end

-- Starts nginx on random free ports; retries when a port is taken.
local function launch_nginx(prefix, cert, key)
  local nginx = find_nginx()
  for _ = 1, PORT_ATTEMPTS do
    local port = random_port()
    local tls_port = cert and random_port()
    if tls_port ~= port then
      write_file(prefix .. "/nginx.conf", render_config(prefix, port, tls_port, cert, key))
      local ok = run(quote(nginx) .. " -p " .. quote(prefix .. "/") .. " -c " .. quote(prefix .. "/nginx.conf")
        .. " -e " .. quote(prefix .. "/error.log") .. " >" .. quote(prefix .. "/start.log") .. " 2>&1")
      if ok then return port, tls_port or nil end
      local log = (read_file(prefix .. "/start.log") or "") .. (read_file(prefix .. "/error.log") or "")
      if not log:find("Address already in use", 1, true) then
        stop_prefix(prefix)
        error("fake_sentry: nginx did not start:\n" .. log, 3)
      end
    end
  end
  stop_prefix(prefix)
  error("fake_sentry: no free port found", 3)
end

-- A backstop for exits that skip finalizers (Lua 5.1's os.exit, a crash, a
-- kill): a shell that waits for this process to end and then stops nginx.
local function start_watchdog(prefix, nginx)
  local lua_pid = tonumber(trim(capture("echo $PPID")))
  if not lua_pid then return end
  local script = string.format(
    "while kill -0 %d && kill -0 %d; do sleep 0.2; done 2>/dev/null; "
    .. "if [ -f %s ]; then kill -TERM %d; i=0; "
    -- nginx removes its pid file as it exits.
    .. "while [ -f %s ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done; rm -rf %s; fi",
    lua_pid, nginx, quote(prefix .. "/.fake-sentry"), nginx, quote(prefix .. "/nginx.pid"), quote(prefix))
  run("nohup sh -c " .. quote(script) .. " >/dev/null 2>&1 </dev/null &")
end

-- Runs stop_prefix(prefix) when the Lua state closes (busted exits with
-- os.exit(code, true), which closes it). Lua 5.1 and LuaJIT only finalize
-- userdata, hence newproxy there.
local function exit_sentinel(prefix)
  local function on_close() pcall(stop_prefix, prefix) end
  local newproxy = rawget(_G, "newproxy")
  if newproxy then
    local proxy = newproxy(true)
    getmetatable(proxy).__gc = on_close
    return proxy
  end
  return setmetatable({}, { __gc = on_close })
end

local function server_table(url, https_url, prefix)
  local server = {
    url = url,
    api = url .. "/api/0/",
    https_url = https_url,
    https_api = https_url and (https_url .. "/api/0/"),
    port = tonumber(url:match(":(%d+)$")),
    https_port = https_url and tonumber(https_url:match(":(%d+)$")),
    prefix = prefix,
  }
  if https_url and prefix then
    server.cert_file = prefix .. "/cert.pem"
    server.key_file = prefix .. "/key.pem"
  end
  return server
end

local function from_environment()
  local url = os.getenv("SENTRY_FAKE_URL")
  if not url or url == "" then return nil end
  local https_url = os.getenv("SENTRY_FAKE_HTTPS_URL")
  local prefix = os.getenv("SENTRY_FAKE_PREFIX")
  local server = server_table((url:gsub("/+$", "")), https_url ~= "" and https_url or nil,
    prefix ~= "" and prefix or nil)
  server.external = true
  return server
end

local function launch(detach)
  local prefix = make_prefix()
  local cert, key = make_certificate(prefix)
  local port, tls_port = launch_nginx(prefix, cert, key)
  local url = "http://127.0.0.1:" .. port
  local ready = false
  for _ = 1, READY_POLLS do
    ready = answers(url)
    if ready then break end
    sleep(0.05)
  end
  if not ready then
    local log = read_file(prefix .. "/error.log") or ""
    stop_prefix(prefix)
    error("fake_sentry: nginx started but does not answer:\n" .. log, 3)
  end
  local server = server_table(url, tls_port and ("https://127.0.0.1:" .. tls_port), prefix)
  server.pid = nginx_pid(prefix)
  if not detach then start_watchdog(prefix, server.pid) end
  return server
end

-- Starts the server once per process and returns its description. Reuses the
-- server named by SENTRY_FAKE_URL (and SENTRY_FAKE_HTTPS_URL,
-- SENTRY_FAKE_PREFIX) when set. options.detach: leave it running after this
-- process exits (for spec/support/fake-sentry); stop it with fake.stop(prefix).
function fake.start(options)
  options = options or {}
  local registry = debug.getregistry()
  local running = registry[REGISTRY_KEY]
  if running then return running.server end

  local server = not options.detach and from_environment() or launch(options.detach)
  running = { server = server }
  if not server.external and not options.detach then
    running.sentinel = exit_sentinel(server.prefix)
  end
  registry[REGISTRY_KEY] = running
  return server
end

-- fake.stop(): stops the server this process started (a reused external one
-- is left alone). fake.stop(prefix): stops the server running in prefix.
function fake.stop(prefix)
  if prefix then return stop_prefix(prefix) end
  local registry = debug.getregistry()
  local running = registry[REGISTRY_KEY]
  registry[REGISTRY_KEY] = nil
  if running and not running.server.external then
    return stop_prefix(running.server.prefix)
  end
  return false
end

-- The shell lines that let other processes reuse this server.
function fake.exports(server)
  local lines = {
    "export SENTRY_FAKE_URL=" .. quote(server.url),
    "export SENTRY_FAKE_PREFIX=" .. quote(server.prefix),
  }
  if server.https_url then
    lines[#lines + 1] = "export SENTRY_FAKE_HTTPS_URL=" .. quote(server.https_url)
  end
  return table.concat(lines, "\n") .. "\n"
end

local function server_url()
  return fake.start().url
end

local function decode(text, what)
  local ok, value = pcall(require("cjson").decode, text)
  if not ok then
    error("fake_sentry: " .. what .. " did not answer with JSON: " .. tostring(text), 3)
  end
  return value
end

local function curl_json(method, path)
  return decode(capture("curl -sS --max-time 10 -X " .. method .. " "
    .. quote(server_url() .. path) .. " 2>&1"), path)
end

-- Counters since the last reset: { requests, connections, in_flight,
-- max_in_flight, by_path = { [path] = n }, by_address = { ["127.0.0.2"] = { requests,
-- authorized } } }. /__fake/ requests are not counted.
function fake.stats()
  return curl_json("GET", "/__fake/stats")
end

function fake.reset()
  return curl_json("POST", "/__fake/reset")
end

local function url_encode(s)
  return (tostring(s):gsub("[^%w%-%._~]", function(ch)
    return string.format("%%%02X", ch:byte())
  end))
end

-- The requests recorded for a flaky/limited key, oldest first: { n, time
-- (seconds, ms precision), method, status, uri, connection }.
function fake.requests(key)
  return curl_json("GET", "/__fake/requests/" .. url_encode(key))
end

local function parse_head(raw)
  -- With 100-continue or redirects there are several header blocks: keep the last.
  local block
  for candidate in (raw .. "\r\n\r\n"):gmatch("(HTTP/[^\r\n]*\r\n.-)\r\n\r\n") do
    block = candidate
  end
  if not block then return nil, {} end
  local status = tonumber(block:match("^HTTP/[%d.]+ (%d+)"))
  local headers = {}
  for name, value in block:gmatch("\r\n([^:\r\n]+):[ \t]*([^\r\n]*)") do
    name = name:lower()
    headers[name] = headers[name] and (headers[name] .. ", " .. value) or value
  end
  return status, headers
end

-- One request with the curl command line, independent of the client under test.
-- opts: headers = { name = value }, token, body (string), insecure (TLS),
-- curl_args (extra arguments, already quoted).
-- Returns { status, headers (lower-case names; repeats joined with ", "),
-- body, json (decoded body or nil), curl_exit }.
function fake.http(method, url, opts)
  opts = opts or {}
  local head_file, body_file = os.tmpname(), os.tmpname()
  -- curl -X HEAD would wait for a body that never comes.
  local method_args = method == "HEAD" and "-I" or ("-X " .. quote(method))
  local args = { "curl -s --max-time 30", method_args, "-D", quote(head_file), "-o", quote(body_file) }
  if opts.insecure then args[#args + 1] = "-k" end
  if opts.token then
    args[#args + 1] = "-H " .. quote("Authorization: Bearer " .. opts.token)
  end
  for name, value in pairs(opts.headers or {}) do
    args[#args + 1] = "-H " .. quote(name .. ": " .. value)
  end
  if opts.body then args[#args + 1] = "--data-binary " .. quote(opts.body) end
  if opts.curl_args then args[#args + 1] = opts.curl_args end
  args[#args + 1] = quote(url)
  local exit_ok, _, code = os.execute(table.concat(args, " ") .. " 2>/dev/null")
  if type(exit_ok) == "number" then code = math.floor(exit_ok / 256) end

  local status, headers = parse_head(read_file(head_file) or "")
  local body = read_file(body_file) or ""
  os.remove(head_file)
  os.remove(body_file)
  local ok, decoded = pcall(require("cjson").decode, body)
  return { status = status, headers = headers, body = body, json = ok and decoded or nil,
           curl_exit = code }
end

return fake
