-- TLS: certificate checks are on by default and their failures say how to fix
-- them; ca_file trusts a private CA; insecure = true works and warns once.
-- Every certificate is made here, at test time, with the openssl command.
local harness = require "harness"
local tokens = harness.tokens
local shell = require "shell"

local quote, run, capture = shell.quote, shell.run, shell.capture
local read_file, write_file = shell.read_file, shell.write_file

local function find_nginx()
  local found = capture("command -v nginx 2>/dev/null"):gsub("%s+$", "")
  if found ~= "" then return found end
  if read_file("/usr/sbin/nginx") then return "/usr/sbin/nginx" end
end

-- A private CA and a server certificate it signed for 127.0.0.1 only (no
-- "localhost"), served by an nginx of our own: the fake's certificate is
-- self-signed, this one needs a chain to be checked.
local private = {}

local function make_private_ca(dir)
  local ssl = "openssl "
  local steps = {
    ssl .. "req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2"
      .. " -subj '/CN=sentry-lua test CA' -keyout ca.key -out ca.pem",
    ssl .. "req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"
      .. " -subj /CN=127.0.0.1 -keyout server.key -out server.csr",
    "printf 'subjectAltName=IP:127.0.0.1\\nbasicConstraints=CA:FALSE\\n' > server.ext",
    ssl .. "x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2"
      .. " -extfile server.ext -out server.pem",
    "cat server.pem ca.pem > chain.pem",
    -- a second, unrelated CA
    ssl .. "req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2"
      .. " -subj '/CN=another CA' -keyout other.key -out other.pem",
  }
  for _, step in ipairs(steps) do
    if not run("cd " .. quote(dir) .. " && { " .. step .. "; } >/dev/null 2>&1") then
      return nil, "openssl failed: " .. step
    end
  end
  return true
end

local NGINX_CONF = [[
worker_processes 1;
daemon on;
pid %s/nginx.pid;
error_log %s/error.log warn;
%s
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path %s/tmp;
  proxy_temp_path %s/tmp;
  fastcgi_temp_path %s/tmp;
  uwsgi_temp_path %s/tmp;
  scgi_temp_path %s/tmp;
  server {
    listen 127.0.0.1:%d ssl;
    ssl_certificate %s/chain.pem;
    ssl_certificate_key %s/server.key;
    default_type application/json;
    location / { return 200 '{"version":"0","auth":null,"user":null}'; }
  }
}
]]

local function start_private_server()
  local nginx = find_nginx()
  if not nginx then return nil, "nginx not found" end
  local dir = os.tmpname()
  os.remove(dir)
  assert(run("mkdir -p " .. quote(dir .. "/tmp")))
  private.dir = dir
  local ok, problem = make_private_ca(dir)
  if not ok then return nil, problem end
  local user = capture("id -u"):match("^0%s") and "user root;" or ""
  math.randomseed(os.time() + tonumber(tostring({}):match("0x(%x+)") or "0", 16) % 100000)
  for _ = 1, 20 do
    local port = math.random(20000, 59999)
    write_file(dir .. "/nginx.conf", string.format(NGINX_CONF, dir, dir, user, dir, dir, dir, dir, dir,
      port, dir, dir))
    if run(quote(nginx) .. " -p " .. quote(dir .. "/") .. " -c " .. quote(dir .. "/nginx.conf")
        .. " -e " .. quote(dir .. "/error.log") .. " >/dev/null 2>&1") then
      private.pid = tonumber(read_file(dir .. "/nginx.pid"))
      private.url = "https://127.0.0.1:" .. port
      private.port = port
      -- stops nginx even if this process dies without running teardown
      run("nohup sh -c " .. quote("while kill -0 " .. capture("echo $PPID"):gsub("%s", "")
        .. " 2>/dev/null; do sleep 1; done; kill " .. tostring(private.pid) .. "; rm -rf " .. quote(dir))
        .. " >/dev/null 2>&1 </dev/null &")
      return true
    end
    local log = read_file(dir .. "/error.log") or ""
    if not log:find("Address already in use", 1, true) then return nil, "nginx did not start: " .. log end
  end
  return nil, "nginx found no free port"
end

local function stop_private_server()
  if private.pid then run("kill " .. private.pid .. " 2>/dev/null") end
  if private.dir then run("rm -rf " .. quote(private.dir)) end
end

-- A client for a TLS base URL that records what it logs.
local function tls_client(base_url, overrides)
  local logs = {}
  overrides = overrides or {}
  overrides.base_url = base_url
  overrides.max_retries = overrides.max_retries or 2
  overrides.log = function(level, message) logs[#logs + 1] = { level = level, message = message } end
  local client, err = harness.client(overrides)
  return client, err, logs
end

local function assert_untrusted(err)
  assert.are.equal("network", err.kind)
  assert.are.equal("tls", err.code)
  assert.are.equal(1, err.attempts) -- retrying cannot fix trust
  local text = tostring(err)
  assert.matches("certificate", text, 1, true)
  assert.matches("not trusted", text, 1, true)
  assert.matches("ca_file", text, 1, true)
  assert.matches("insecure = true", text, 1, true)
end

describe("TLS", function()
  local server

  setup(function()
    server = harness.server()
  end)

  describe("a self-signed certificate (the fake Sentry's TLS listener)", function()
    setup(function()
      assert(server.https_url, "the fake Sentry has no TLS listener: is openssl installed?")
    end)

    it("is refused by default, with an error that says why and how to fix it", function()
      local client = assert(tls_client(server.https_url))
      local res, err = client:get("/")
      assert.is_nil(res)
      assert_untrusted(err)
      assert.matches("self%-signed", err.detail)
      client:close()
    end)

    it("is trusted with ca_file", function()
      local client = assert(tls_client(server.https_url, { ca_file = server.cert_file }))
      local info = assert(client:whoami())
      assert.are.equal("user", info.token_type)
      local res = assert(client:get("/organizations/{org}/projects/"))
      assert.are.equal(200, res.status)
      client:close()
    end)

    it("insecure = true works and warns once per client, never showing the token", function()
      local client, _, logs = tls_client(server.https_url, { insecure = true, token = tokens.distinctive })
      assert(client)
      for _ = 1, 5 do assert.are.equal(200, assert(client:get("/")).status) end
      assert.are.equal(1, #logs)
      assert.are.equal("warn", logs[1].level)
      assert.matches("insecure = true", logs[1].message, 1, true)
      assert.matches("verification is off", logs[1].message, 1, true)
      assert.is_nil(logs[1].message:find(tokens.DISTINCTIVE_MARKER, 1, true))
      client:close()
      local quiet, _, quiet_logs = tls_client(server.https_url, { ca_file = server.cert_file })
      assert(quiet:get("/"))
      assert.are.equal(0, #quiet_logs)
      quiet:close()
    end)

    it("the default log writes the insecure warning to stderr once", function()
      local script = os.tmpname()
      write_file(script, [[
        local sentry = require "sentry"
        local c = assert(sentry.new { token = ]] .. string.format("%q", tokens.user_full) .. [[,
          base_url = ]] .. string.format("%q", server.https_url) .. [[, insecure = true, config = false,
          env = function() return nil end })
        for _ = 1, 3 do assert(c:get("/")) end
        print("requests done")
      ]])
      local lua = arg and arg[-1] or "lua"
      local cpath = package.cpath:gsub("'", "")
      local out = capture("LUA_PATH='lua/?.lua;lua/?/init.lua;;' LUA_CPATH='" .. cpath .. "' "
        .. quote(lua) .. " " .. quote(script) .. " 2>&1")
      os.remove(script)
      assert.matches("requests done", out, 1, true)
      local _, warnings = out:gsub("sentry: warn: TLS certificate verification is off", "")
      assert.are.equal(1, warnings, out)
    end)

    it("the fake's certificate does not make another origin trusted", function()
      -- plain HTTP spoken to the TLS port, and TLS to the plain port, fail cleanly
      local client = assert(tls_client(server.url:gsub("^http:", "https:"), { ca_file = server.cert_file }))
      local _, err = client:get("/")
      assert.are.equal("network", err.kind)
      client:close()
    end)
  end)

  describe("a certificate signed by a private CA", function()
    setup(function()
      assert(start_private_server())
    end)

    teardown(function()
      stop_private_server()
    end)

    it("is refused by default as not trusted", function()
      local client = assert(tls_client(private.url))
      local _, err = client:get("/")
      assert_untrusted(err)
      assert.matches("certificate chain", err.detail, 1, true)
      client:close()
    end)

    it("is trusted with the CA as ca_file (the chain is checked, not the leaf pinned)", function()
      local client = assert(tls_client(private.url, { ca_file = private.dir .. "/ca.pem" }))
      local res = assert(client:get("/"))
      assert.are.equal(200, res.status)
      assert.are.equal("0", res.body.version)
      client:close()
    end)

    it("is refused with an unrelated CA as ca_file", function()
      local client = assert(tls_client(private.url, { ca_file = private.dir .. "/other.pem" }))
      local _, err = client:get("/")
      assert.are.equal("tls", err.code)
      client:close()
    end)

    it("is refused for a host name it was not issued for, even with its CA", function()
      local client = assert(tls_client("https://localhost:" .. private.port, { ca_file = private.dir .. "/ca.pem" }))
      local _, err = client:get("/")
      assert.are.equal("network", err.kind)
      assert.are.equal("tls", err.code)
      assert.matches("localhost", err.detail, 1, true)
      client:close()
    end)

    it("insecure = true accepts it anyway (with the warning)", function()
      local client, _, logs = tls_client("https://localhost:" .. private.port, { insecure = true })
      assert.are.equal(200, assert(client:get("/")).status)
      assert.are.equal(1, #logs)
      client:close()
    end)
  end)

  describe("ca_file", function()
    it("that cannot be read is refused by sentry.new, saying so", function()
      local client, err = harness.client { base_url = "https://127.0.0.1:1", ca_file = "/nonexistent/ca.pem" }
      assert.is_nil(client)
      assert.are.equal("invalid", err.kind)
      assert.matches("ca_file cannot be read", err.detail, 1, true)
      assert.matches("/nonexistent/ca.pem", err.detail, 1, true)
    end)
  end)
end)
