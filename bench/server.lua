--- Starts and stops the benchmark's nginx (bench/nginx.conf, bench/handlers.lua)
-- under a temporary prefix, on 127.0.0.1 and a free port.
-- Plain Lua with io and os only.
local server = {}

local function quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

local function run(command)
  local first, _, code = os.execute(command)
  if type(first) == "number" then return first == 0 end
  return first == true and (code == nil or code == 0)
end

local function capture(command)
  local pipe = assert(io.popen(command, "r"))
  local out = pipe:read("*a")
  pipe:close()
  return (out:gsub("%s+$", ""))
end

local function read_file(path)
  local file = io.open(path, "rb")
  if not file then return nil end
  local text = file:read("*a")
  file:close()
  return text
end

local function write_file(path, text)
  local file = assert(io.open(path, "wb"))
  assert(file:write(text))
  file:close()
end

local function find_nginx()
  local configured = os.getenv("NGINX")
  if configured and configured ~= "" then return configured end
  local found = capture("command -v nginx 2>/dev/null")
  if found ~= "" then return found end
  if read_file("/usr/sbin/nginx") then return "/usr/sbin/nginx" end
  error("bench: nginx not found (run 'make deps', or set NGINX)", 0)
end

-- A backstop for a driver that dies or is killed before it stops the server:
-- a shell that waits for the driver process to end, then stops nginx.
local function start_watchdog(prefix, nginx_pid)
  local driver_pid = capture("echo $PPID")
  local script = string.format("while kill -0 %s && kill -0 %d; do sleep 0.5; done 2>/dev/null; "
    .. "if [ -f %s ]; then kill -TERM %d; sleep 1; rm -rf %s; fi",
    driver_pid, nginx_pid, quote(prefix .. "/nginx.pid"), nginx_pid, quote(prefix))
  run("nohup sh -c " .. quote(script) .. " >/dev/null 2>&1 </dev/null &")
end

-- A self-signed certificate for 127.0.0.1, made for this run: the clients
-- trust it as their CA file.
local function make_certificate(prefix)
  local made = run("cd " .. quote(prefix) .. " && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1"
    .. " -nodes -days 2 -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 -keyout server.key -out server.pem"
    .. " >/dev/null 2>&1")
  if not made then error("bench: openssl could not make a certificate (is openssl installed?)", 0) end
  return prefix .. "/server.pem"
end

--- Starts nginx. opts: bench_dir (absolute path of bench/), pin (a command
-- prefix such as "taskset -c 1 ", or ""). Returns { url, port, prefix, pid,
-- h2_port, h1_port, ca_file }: plain HTTP on port, TLS with HTTP/2 on h2_port,
-- TLS with HTTP/1.1 only on h1_port, all three on 127.0.0.1.
-- nginx is stopped when the calling process ends, whatever the reason.
function server.start(opts)
  local reserved = os.tmpname()
  local prefix = reserved .. "-bench"
  os.remove(reserved)
  assert(run("mkdir -m 0755 " .. quote(prefix) .. " && mkdir " .. quote(prefix .. "/tmp")))
  local template = assert(read_file(opts.bench_dir .. "/nginx.conf"))
  -- served from the configuration itself, inside single quotes
  local list = assert(read_file(opts.bench_dir .. "/list.json")):gsub("%s+$", "")
  assert(not list:find("['\\$]"), "bench: list.json must not hold ', \\ or $")
  local nginx = find_nginx()
  local ca_file = make_certificate(prefix)
  math.randomseed(os.time() + tonumber(tostring({}):match("0x(%x+)") or "0", 16) % 100003)
  for _ = 1, 20 do
    local port = math.random(20000, 59997)
    local values = {
      PREFIX = prefix, PORT = tostring(port), PORT_H2 = tostring(port + 1), PORT_H1 = tostring(port + 2),
      BENCH_DIR = opts.bench_dir, LIST_JSON = list,
      -- as root, nginx would run its worker as nobody, who may not read the checkout
      USER = capture("id -u") == "0" and "user root;" or "",
    }
    write_file(prefix .. "/nginx.conf", (template:gsub("%${([%w_]+)}", function(name)
      return assert(values[name], "bench: unknown placeholder " .. name)
    end)))
    local started = run((opts.pin or "") .. quote(nginx) .. " -p " .. quote(prefix .. "/") .. " -c "
      .. quote(prefix .. "/nginx.conf") .. " -e " .. quote(prefix .. "/error.log") .. " >"
      .. quote(prefix .. "/start.log") .. " 2>&1")
    if started then
      local url = "http://127.0.0.1:" .. port
      for _ = 1, 100 do
        if capture("curl -s -o /dev/null -w '%{http_code}' --max-time 2 " .. quote(url .. "/api/0/bench/slow/")) == "200" then
          local pid = tonumber(read_file(prefix .. "/nginx.pid"))
          if pid then start_watchdog(prefix, pid) end
          return { url = url, port = port, prefix = prefix, pid = pid, h2_port = port + 1, h1_port = port + 2,
            ca_file = ca_file }
        end
        run("sleep 0.05")
      end
      server.stop { prefix = prefix }
      error("bench: nginx started but does not answer:\n" .. (read_file(prefix .. "/error.log") or ""), 0)
    end
    local log = (read_file(prefix .. "/start.log") or "") .. (read_file(prefix .. "/error.log") or "")
    if not log:find("Address already in use", 1, true) then
      run("rm -rf " .. quote(prefix))
      error("bench: nginx did not start:\n" .. log, 0)
    end
  end
  run("rm -rf " .. quote(prefix))
  error("bench: no free port found", 0)
end

--- Stops nginx and removes its prefix directory.
function server.stop(s)
  local pid = tonumber(read_file(s.prefix .. "/nginx.pid") or "")
  if pid then
    run("kill -TERM " .. pid .. " 2>/dev/null")
    for _ = 1, 100 do
      if not read_file(s.prefix .. "/nginx.pid") then break end
      run("sleep 0.05")
    end
  end
  run("rm -rf " .. quote(s.prefix))
end

return server
