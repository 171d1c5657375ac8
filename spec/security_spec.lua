-- The token and the request go only where the user meant: dot segments,
-- framing headers, the same-source rule for configuration, TLS checks that
-- only code turns off, secrecy of tokens in formats Sentry does not issue,
-- and responses trusted only when complete.
local harness = require "harness"
local tokens = harness.tokens
local fake = harness.fake
local shell = require "shell"
local sentry = require "sentry"

local quote, run, write_file = shell.quote, shell.run, shell.write_file

-- The fake Sentry answers on 127.0.0.1 ("the user's Sentry") and on 127.0.0.2
-- at the same port ("another host").
local function user_url() return harness.server().url end
local function other_url() return (harness.server().url:gsub("127%.0%.0%.1", "127.0.0.2")) end

local function other_host_requests()
  local seen = fake.stats().by_address["127.0.0.2"]
  return seen and seen.requests or 0, seen and seen.authorized or 0
end

-- A fresh client for each test of the block, and a fake with clean counters.
local function with_client()
  local holder = {}
  before_each(function()
    holder.client = assert(harness.client())
    fake.reset()
  end)
  after_each(function() holder.client:close() end)
  return holder
end

describe("security: the path never leaves the endpoint it names", function()
  local each = with_client()

  for _, value in ipairs { "..", ".", "" } do
    it(string.format("refuses a path parameter of %q, sending nothing", value), function()
      local res, err = each.client:delete("/organizations/{org}/members/{member_id}/", { params = { member_id = value } })
      assert.is_nil(res)
      assert.are.equal("invalid", err.kind)
      assert.matches("params.member_id is " .. string.format("%q", value), err.detail, 1, true)
      assert.matches("change the endpoint", err.detail, 1, true)
      assert.are.equal(0, fake.stats().requests)
    end)
  end

  it("refuses org and project of '..' (GET /api/ otherwise)", function()
    local res, err = each.client:get("/projects/{org}/{project}/", { params = { org = "..", project = ".." } })
    assert.is_nil(res)
    assert.are.equal("invalid", err.kind)
    assert.are.equal(0, fake.stats().requests)
  end)

  it("keeps a dotted slug that is not a dot segment", function()
    local res = assert(each.client:get("/fake/echo/{name}/", { params = { name = "..." } }))
    assert.are.equal("/api/0/fake/echo/.../", res.body.path)
    res = assert(each.client:get("/fake/echo/{name}/", { params = { name = "a..b" } }))
    assert.are.equal("/api/0/fake/echo/a..b/", res.body.path)
  end)

  for _, path in ipairs {
    "/organizations/acme/members/../", "/fake/echo/./x/", "/organizations/acme/%2e%2E/",
    "/fake/echo/%2E/", "/../../admin/",
  } do
    it("refuses a path with a dot segment: " .. path, function()
      local res, err = each.client:delete(path)
      assert.is_nil(res)
      assert.are.equal("invalid", err.kind)
      assert.matches("segment", err.detail, 1, true)
      assert.are.equal(0, fake.stats().requests)
    end)
  end

  it("refuses a same-origin URL outside /api/0/", function()
    for _, target in ipairs { user_url() .. "/admin/", user_url() .. "/api/1/x/", user_url() .. "/api/0/../x/" } do
      local res, err = each.client:get(target)
      assert.is_nil(res, target)
      assert.are.equal("invalid", err.kind)
    end
    assert.are.equal(0, fake.stats().requests)
  end)

  it("does not follow a same-origin redirect out of /api/0/", function()
    local c = assert(harness.client { follow_redirects = true })
    local res, err = c:get("/fake/moved/", { query = { to = "../../../outside/", status = 302 } })
    assert.is_nil(res)
    assert.are.equal(302, err.status)
    assert.matches("outside the API root", err.detail, 1, true)
    assert.is_nil(fake.stats().by_path["/outside/"])
    c:close()
  end)
end)

describe("security: no request smuggling through caller headers", function()
  local each = with_client()

  local smuggled = "0\r\n\r\nGET /api/0/fake/echo/smuggled/ HTTP/1.1\r\nHost: x\r\n\r\n"
  for _, name in ipairs {
    "Content-Length", "content-length", "Transfer-Encoding", "Host", "Connection", "Keep-Alive",
    "Proxy-Connection", "TE", "Trailer", "Upgrade", "Proxy-Authorization",
  } do
    it("refuses a " .. name .. " header, sending nothing", function()
      local ok, problem = pcall(each.client.post, each.client, "/fake/echo/",
        { headers = { [name] = "chunked" }, body = smuggled })
      assert.is_false(ok)
      assert.matches("the " .. name .. " header is set by the transport", problem, 1, true)
      assert.are.equal(0, fake.stats().requests)
    end)
  end

  it("names the caller's line when it refuses a header #caller_line", function()
    local ok, problem = pcall(each.client.get, each.client, "/fake/echo/", { headers = { Host = "elsewhere" } })
    assert.is_false(ok)
    assert.matches("^spec/security_spec%.lua:%d+: the Host header is set by the transport", problem)
  end)

  it("sends a body that looks like a request as one body, on the next request too", function()
    assert(each.client:post("/fake/echo/", { body = smuggled }))
    local res = assert(each.client:get("/fake/echo/after/"))
    assert.are.equal("/api/0/fake/echo/after/", res.body.path)
    assert.is_nil(fake.stats().by_path["/api/0/fake/echo/smuggled/"])
  end)
end)

describe("security: URL and token from the same configuration source", function()
  local root, home, cwd, env, logs
  local TOKEN_FILE = tokens.user_full
  local function new(opts)
    opts = opts or {}
    opts.home, opts.cwd = home, cwd
    opts.env = function(name) return env[name] end
    opts.log = function(_, message) logs[#logs + 1] = message end
    opts.sleep = function() end
    return sentry.new(opts)
  end
  local function logged(text)
    for _, line in ipairs(logs) do
      if line:find(text, 1, true) then return line end
    end
  end
  local function refused(c, err, ...)
    assert.is_nil(c)
    assert.are.equal("invalid", err.kind)
    assert.matches("not using the auth token from", err.detail, 1, true)
    for i = 1, select("#", ...) do assert.matches(select(i, ...), err.detail, 1, true) end
    assert.is_nil(tostring(err):find(TOKEN_FILE, 1, true))
    assert.are.equal(0, (other_host_requests()))
  end

  before_each(function()
    root = os.tmpname()
    os.remove(root)
    home, cwd = root .. "/home", root .. "/clone/app/src"
    assert(run("mkdir -p " .. quote(home) .. " " .. quote(cwd)))
    env, logs = {}, {}
    fake.reset()
  end)
  after_each(function() run("rm -rf " .. quote(root)) end)

  local function global_rc(text) write_file(home .. "/.sentryclirc", text) end
  local function project_rc(text, dir) write_file((dir or root .. "/clone") .. "/.sentryclirc", text) end

  it("token and URL in ~/.sentryclirc, a URL in a project file: refused, naming both", function()
    global_rc("[auth]\ntoken = " .. TOKEN_FILE .. "\n[defaults]\nurl = " .. user_url() .. "\n")
    project_rc("[defaults]\nurl = " .. other_url() .. "\norg = acme\n")
    local c, err = new()
    refused(c, err, "~/.sentryclirc [auth] token", root .. "/clone/.sentryclirc [defaults] url", other_url())
  end)

  it("SENTRY_URL set, the token only in a project file: refused", function()
    env.SENTRY_URL = other_url()
    project_rc("[auth]\ntoken = " .. TOKEN_FILE .. "\n")
    local c, err = new()
    refused(c, err, "the URL comes from SENTRY_URL")
  end)

  it("nested project files, the nearest with only a URL: refused", function()
    global_rc("[auth]\ntoken = " .. TOKEN_FILE .. "\n")
    project_rc("[defaults]\nurl = " .. other_url() .. "\n", root .. "/clone/app")
    project_rc("[auth]\ntoken = " .. TOKEN_FILE .. "\n[defaults]\nurl = " .. user_url() .. "\n")
    local c, err = new()
    refused(c, err, root .. "/clone/app/.sentryclirc [defaults] url")
  end)

  it("an org token without a URL in ~/.sentryclirc, a URL in a project file: refused", function()
    global_rc("[auth]\ntoken = " .. tokens.org_token(nil, "acme") .. "\n")
    project_rc("[defaults]\nurl = " .. other_url() .. "\n")
    local c, err = new()
    refused(c, err, "~/.sentryclirc [auth] token")
  end)

  it("SENTRY_AUTH_TOKEN set, a URL only in a file: the URL is ignored, with a warning", function()
    env.SENTRY_AUTH_TOKEN = TOKEN_FILE
    project_rc("[defaults]\nurl = " .. other_url() .. "\n")
    local c = assert(new())
    assert.are.equal("https://sentry.io/api/0/", c.base_url)
    assert.truthy(logged("ignoring a configured URL: " .. root .. "/clone/.sentryclirc [defaults] url"))
    c:close()
  end)

  it("token and URL in ~/.sentryclirc, only a token in the project file: the global URL is ignored", function()
    global_rc("[auth]\ntoken = " .. tokens.org_token(nil, "x") .. "\n[defaults]\nurl = " .. other_url() .. "\n")
    project_rc("[auth]\ntoken = " .. TOKEN_FILE .. "\n")
    local c = assert(new())
    assert.are.equal("https://sentry.io/api/0/", c.base_url)
    assert.truthy(logged("ignoring a configured URL: ~/.sentryclirc [defaults] url"))
    c:close()
  end)

  it("token and URL from one file are used together", function()
    project_rc("[auth]\ntoken = " .. TOKEN_FILE .. "\n[defaults]\nurl = " .. user_url() .. "\norg = acme\n")
    local c = assert(new())
    assert(c:get("/fake/echo/"))
    local user = fake.stats().by_address["127.0.0.1"]
    assert.are.equal(1, user.authorized)
    c:close()
  end)

  it("an explicit token is not redirected by a project file's url or proxy_url", function()
    project_rc("[defaults]\nurl = " .. other_url() .. "\n[http]\nproxy_url = " .. other_url() .. "\n")
    local c = assert(new { token = TOKEN_FILE })
    assert.are.equal("https://sentry.io/api/0/", c.base_url)
    assert.truthy(logged("[http] proxy_url: it is another configuration source than the auth token"))
    c:close()
    c = assert(new { token = TOKEN_FILE, base_url = user_url() })
    assert(c:get("/fake/echo/"))
    assert.are.equal(0, (other_host_requests()))
    assert.are.equal(1, fake.stats().by_address["127.0.0.1"].authorized)
    c:close()
  end)

  it("an explicit token with SENTRY_URL: both are the caller's", function()
    env.SENTRY_URL = user_url()
    local c = assert(new { token = TOKEN_FILE })
    assert.are.equal(user_url() .. "/api/0/", c.base_url)
    c:close()
  end)

  it("[http] verify_ssl = no in a file does not turn certificate checks off", function()
    local https_url = harness.server().https_url
    assert(https_url, "the fake Sentry has no TLS listener")
    project_rc("[auth]\ntoken = " .. TOKEN_FILE .. "\n[defaults]\nurl = " .. https_url .. "\n"
      .. "[http]\nverify_ssl = no\n")
    local c = assert(new())
    assert.truthy(logged("certificate checks are turned off only by code"))
    local res, err = c:get("/fake/echo/")
    assert.is_nil(res)
    assert.are.equal("tls", err.code, err.detail)
    c:close()
  end)
end)

describe("security: secrecy by value", function()
  local SELF_HOSTED = "MyCompanySelfHostedToken0123456789abcdefXYZ"

  local function echoing_client()
    return assert(harness.client { token = SELF_HOSTED })
  end

  it("masks a token of unknown format that a server echoes, in every field of the error", function()
    local c = echoing_client()
    local res, err = c:get("/fake/echo-token/")
    assert.is_nil(res)
    assert.are.equal("unauthorized", err.kind)
    local seen = {}
    local function all_text(value)
      if type(value) == "table" then
        if seen[value] then return "" end
        seen[value] = true
        local out = {}
        for k, v in pairs(value) do out[#out + 1] = all_text(k) .. "=" .. all_text(v) end
        return table.concat(out, " ")
      end
      return tostring(value)
    end
    local text = tostring(err) .. " " .. all_text(err)
    assert.matches("Invalid token 'MyCompan********'", tostring(err), 1, true)
    assert.is_nil(text:find(SELF_HOSTED, 1, true))
    assert.is_nil(text:find(SELF_HOSTED:sub(9), 1, true))
    -- the percent-encoded and base64 copies the server also sent
    assert.is_nil(text:find("MyCompanySelfHostedToken", 1, true))
    assert.is_nil(text:find("ZWxmSG9zdGVkVG9rZW4", 1, true))
    c:close()
  end)

  it("masks every encoding the scrubber knows, at every base64 offset", function()
    local scrub = sentry.token.scrubber(SELF_HOSTED)
    local function base64(s)
      local pipe = io.popen("printf '%s' " .. quote(s) .. " | base64 -w0")
      local out = pipe:read("*a")
      pipe:close()
      return out
    end
    for _, prefix in ipairs { "", "a", "ab", "Bearer ", "user:" } do
      local encoded = base64(prefix .. SELF_HOSTED)
      assert.is_nil(scrub(encoded):find(encoded:sub(9, 40), 1, true), prefix)
    end
    assert.are.equal("plain text stays", scrub("plain text stays"))
    local with_reserved = "self+hosted/token=0123456789abcdef"
    local percent = "self%2Bhosted%2Ftoken%3D0123456789abcdef"
    local scrub_reserved = sentry.token.scrubber(with_reserved)
    assert.is_nil(scrub_reserved("?t=" .. percent):find("0123456789abcdef", 1, true))
    assert.is_nil(scrub_reserved("?t=" .. percent:lower()):find("0123456789abcdef", 1, true))
  end)
end)

describe("security: a response is trusted only when complete", function()
  it("a connection closed inside the headers is a network error, and its rate limits are not believed", function()
    local c = assert(harness.client { max_retries = 0 })
    local res, err = c:get("/fake/cut-headers/")
    assert.is_nil(res)
    assert.are.equal("network", err.kind)
    assert.matches("closed before the end of the response headers", err.detail, 1, true)
    -- the endpoint is not locked: the next request goes out and gets the same error, not rate_limited
    res, err = c:get("/fake/cut-headers/")
    assert.is_nil(res)
    assert.are.equal("network", err.kind)
    c:close()
  end)

  it("a Reset or Retry-After more than an hour away is not believed", function()
    fake.reset()
    local c = assert(harness.client { max_retries = 1, max_retry_wait = 5 })
    -- a 503 whose headers say the window is used up for 260 years: the retry is not held back
    local res = assert(c:get("/fake/flaky/far-reset/", { query = { fail = 1, status = 503,
      reset_in = 260 * 365 * 86400, remaining = 0 } }))
    assert.are.equal(2, res.attempts)
    -- a 429 asking for a day: backed off (max_retry_wait 5 s) and retried, not failed at once
    res = assert(c:get("/fake/flaky/far-retry-after/", { query = { fail = 1, status = 429, retry_after = 86400 } }))
    assert.are.equal(2, res.attempts)
    c:close()
  end)
end)
