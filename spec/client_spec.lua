-- The client against the fake Sentry: requests, responses, errors, auth, lifecycle.
local harness = require "harness"
local sentry = require "sentry"
local tokens = harness.tokens
local fake = harness.fake

describe("sentry client", function()
  local server, client

  setup(function()
    server = harness.server()
  end)

  before_each(function()
    client = assert(harness.client())
  end)

  after_each(function()
    client:close()
  end)

  describe("requests", function()
    it("lists projects with decoded JSON, links and rate-limit numbers", function()
      local res = assert(client:get("/organizations/{org}/projects/", { query = { per_page = 50 } }))
      assert.are.equal(200, res.status)
      assert.are.equal(50, #res.body)
      assert.are.equal("project-001", res.body[1].slug)
      assert.are.equal("0:50:0", res.links.next.cursor)
      assert.is_true(res.links.next.results)
      assert.is_false(res.links.previous.results)
      assert.is_number(res.rate_limit.limit)
      assert.is_number(res.rate_limit.remaining)
      assert.is_true(res.rate_limit.reset > os.time() - 1)
      assert.are.equal("application/json", res.headers["content-type"]:match("^[^;]+"))
      assert.are.equal(1, res.attempts)
    end)

    it("reuses one connection for sequential requests", function()
      fake.reset()
      for _ = 1, 5 do assert(client:get("/organizations/acme/")) end
      local stats = fake.stats()
      assert.are.equal(5, stats.requests)
      assert.are.equal(1, stats.connections)
    end)

    it("sends the bearer token, a sentry-lua User-Agent, gzip and no Expect", function()
      client:close()
      client = assert(harness.client { user_agent = "my-tool/2.0" })
      local res = assert(client:post("/fake/echo/", { body = { big = string.rep("x", 4096) } }))
      local seen = res.body.headers
      assert.are.equal("Bearer " .. tokens.user_full, seen.authorization)
      assert.are.equal("sentry-lua/" .. sentry.VERSION .. " my-tool/2.0", seen["user-agent"])
      if harness.transport() == "curl" then
        assert.truthy(seen["accept-encoding"]:find("gzip", 1, true))
      else -- cosockets cannot decompress: ask for none
        assert.is_nil(seen["accept-encoding"])
      end
      assert.is_nil(seen.expect)
      assert.are.equal("application/json", seen["content-type"])
      assert.are.equal("application/json", seen.accept)
    end)

    it("sends a caller's User-Agent and Accept-Encoding instead of its own, once", function()
      local res = assert(client:get("/fake/echo/", { headers = { ["user-agent"] = "custom/1",
        ["ACCEPT-ENCODING"] = "identity" } }))
      local seen = res.body.headers
      assert.are.equal("custom/1", seen["user-agent"])
      assert.are.equal("identity", seen["accept-encoding"])
      res = assert(client:get("/fake/echo/", { headers = { ["X-Other"] = "1" } }))
      assert.are.equal("sentry-lua/" .. sentry.VERSION, res.body.headers["user-agent"])
    end)

    it("sends one User-Agent through a plain HTTP proxy, ours or the caller's", function()
      if harness.transport() ~= "curl" then return pending("libcurl's proxy support") end
      -- nginx takes the proxy's absolute-form request line as its own: the fake is the proxy too
      local proxied = assert(harness.client { proxy = harness.server().url, user_agent = "my-tool/2.0" })
      local res = assert(proxied:get("/fake/echo/"))
      assert.are.equal("sentry-lua/" .. sentry.VERSION .. " my-tool/2.0", res.body.headers["user-agent"])
      res = assert(proxied:get("/fake/echo/", { headers = { ["User-Agent"] = "caller/1" } }))
      assert.are.equal("caller/1", res.body.headers["user-agent"])
      proxied:close()
    end)

    it("decodes gzip-compressed responses (libcurl; cosockets ask for none)", function()
      local res = assert(client:get("/organizations/acme/projects/"))
      assert.are.equal(harness.transport() == "curl" and "gzip" or nil, res.headers["content-encoding"])
      assert.are.equal(100, #res.body)
    end)

    it("reads chunked responses", function()
      local res = assert(client:get("/fake/chunked/"))
      assert.are.equal("chunked", res.headers["transfer-encoding"])
      assert.is_table(res.body)
    end)

    it("percent-encodes path values so a slash never makes a new segment", function()
      local res = assert(client:get("/fake/echo/{name}/", { params = { name = "a/b c?d" } }))
      assert.are.equal("/api/0/fake/echo/a%2Fb%20c%3Fd/", res.body.uri)
    end)

    it("fills {org} and {project} and their long aliases from the client", function()
      client:close()
      client = assert(harness.client { project = "web" })
      local res = assert(client:get("/fake/echo/{organization_id_or_slug}/{project_id_or_slug}/"))
      assert.are.equal("/api/0/fake/echo/acme/web/", res.body.uri)
      res = assert(client:get("/fake/echo/{org}/", { params = { org = "other" } }))
      assert.are.equal("/api/0/fake/echo/other/", res.body.uri)
    end)

    it("says which placeholder is missing", function()
      local res, err = client:get("/projects/{org}/{project}/")
      assert.is_nil(res)
      assert.are.equal("invalid", err.kind)
      assert.truthy(tostring(err):find("{project}", 1, true))
    end)

    it("accepts the /api/0 prefix and absolute URLs on the same origin", function()
      local a = assert(client:get("/api/0/fake/echo/x/"))
      local b = assert(client:get(server.url .. "/api/0/fake/echo/x/"))
      local c = assert(client:get("fake/echo/x/"))
      assert.are.equal("/api/0/fake/echo/x/", a.body.uri)
      assert.are.equal(a.body.uri, b.body.uri)
      assert.are.equal(a.body.uri, c.body.uri)
    end)

    it("refuses to send the token to another origin", function()
      fake.reset()
      local res, err = client:get("https://evil.example.com/api/0/")
      assert.is_nil(res)
      assert.are.equal("invalid", err.kind)
      assert.truthy(err.detail:find("another origin", 1, true))
      assert.are.equal(0, fake.stats().requests)
    end)

    it("encodes query tables, repeating keys for arrays", function()
      local res = assert(client:get("/fake/echo/", { query = { project = { 1, 2 }, query = "is:unresolved a&b" } }))
      assert.truthy(res.body.uri:find("project=1&project=2", 1, true))
      assert.truthy(res.body.uri:find("query=is%3Aunresolved%20a%26b", 1, true))
    end)

    it("sends table bodies as JSON and string bodies as given", function()
      local res = assert(client:put("/fake/echo/", { body = { name = "web", n = 3 } }))
      assert.are.equal("PUT", res.body.method)
      assert.are.same({ name = "web", n = 3 }, require("cjson").decode(res.body.body))
      res = assert(client:post("/fake/echo/", { body = "raw=1", headers = { ["Content-Type"] = "text/plain" } }))
      assert.are.equal("raw=1", res.body.body)
      assert.are.equal("text/plain", res.body.headers["content-type"])
    end)

    it("sends each request's own headers, whatever the request before it sent", function()
      -- the core keeps the header list of the previous request while the headers stay the same
      for _, case in ipairs {
        { nil, nil }, { { ["X-Trace"] = "1" }, "1" }, { { ["X-Trace"] = "1" }, "1" }, { { ["X-Trace"] = "2" }, "2" },
        { { ["X-Trace"] = "" }, "" }, { nil, nil }, { { ["X-Other"] = "1" }, nil },
      } do
        local res = assert(client:get("/fake/echo/", { headers = case[1] }))
        assert.are.equal(case[2], res.body.headers["x-trace"])
        assert.are.equal("application/json", res.body.headers.accept)
        assert.truthy(res.body.headers.authorization)
      end
    end)

    it("supports every method", function()
      for _, method in ipairs { "get", "post", "put", "patch", "delete" } do
        local res = assert(client[method](client, "/fake/echo/"))
        assert.are.equal(method:upper(), res.body.method)
      end
      local head = assert(client:head("/fake/echo/"))
      assert.are.equal(200, head.status)
      assert.is_nil(head.body) -- an empty body is nil
      local res = assert(client:request("OPTIONS", "/fake/echo/"))
      assert.are.equal("OPTIONS", res.body.method)
    end)

    it("keeps non-JSON bodies as strings", function()
      local res = assert(client:get("/fake/text/"))
      assert.is_string(res.body)
    end)

    it("deletes a project with a 204 and an empty body", function()
      local res = assert(client:delete("/projects/{org}/{project}/", { params = { project = "project-002" } }))
      assert.are.equal(204, res.status)
      assert.is_nil(res.body)
    end)
  end)

  describe("errors", function()
    it("401 for a token the server does not know", function()
      client:close()
      client = assert(harness.client { token = tokens.unknown_to_server })
      local res, err = client:get("/organizations/acme/projects/")
      assert.is_nil(res)
      assert.are.equal("unauthorized", err.kind)
      assert.are.equal(401, err.status)
      assert.are.equal("Invalid token", err.detail)
    end)

    it("403 reads as one line with method and URL", function()
      client:close()
      client = assert(harness.client { token = tokens.user_read })
      local _, err = client:delete("/projects/acme/project-003/")
      assert.are.equal("forbidden", err.kind)
      local line = tostring(err)
      assert.truthy(line:find("^sentry: 403 forbidden: You do not have permission to perform this action%."))
      assert.truthy(line:find("(DELETE " .. server.url .. "/api/0/projects/acme/project-003/)", 1, true))
      assert.is_nil(line:find("\n"))
    end)

    it("404 for an unknown organization", function()
      local _, err = client:get("/organizations/nope/projects/")
      assert.are.equal("not_found", err.kind)
      assert.are.equal("The requested resource does not exist", err.detail)
    end)

    local shapes = {
      { 400, "field_errors", "http", "projects: .*version: This field is required%." },
      { 401, "detail_object", "unauthorized", "." },
      { 410, "message", "http", "This API no longer exists%." },
      { 400, "bare_string", "http", "." },
      { 502, "html", "http", "." },
      { 500, "error_id", "http", "Internal Error %(error id abc123%)" },
    }
    for _, case in ipairs(shapes) do
      local status, shape, kind, pattern = case[1], case[2], case[3], case[4]
      it("extracts the detail from a " .. status .. " " .. shape .. " body", function()
        client:close()
        client = assert(harness.client { max_retries = 0 })
        local _, err = client:get("/fake/status/" .. status .. "/", { query = { shape = shape } })
        assert.are.equal(kind, err.kind)
        assert.are.equal(status, err.status)
        assert.is_string(err.detail)
        assert.truthy(err.detail:find(pattern), err.detail)
        assert.is_nil(err.detail:find("<", 1, true))
      end)
    end

    it("keeps the code of a structured detail", function()
      local _, err = client:get("/fake/status/401/", { query = { shape = "detail_object" } })
      assert.are.equal("sso-required", err.code)
      assert.truthy(tostring(err):find("[sso-required]", 1, true))
    end)

    it("reports a 302 ProjectMoved with the new location", function()
      local _, err = client:get("/fake/moved/")
      assert.are.equal(302, err.status)
      assert.are.equal("resource-moved", err.code)
      assert.is_string(err.location)
    end)

    it("reports invalid JSON in a 200 as a decode error with the raw body", function()
      local res, err = client:get("/fake/invalid-json/")
      assert.is_nil(res)
      assert.are.equal("decode", err.kind)
      assert.is_string(err.body)
    end)

    it("reports a refused connection as a network error", function()
      client:close()
      client = assert(harness.client { base_url = "http://127.0.0.1:1", max_retries = 0 })
      local _, err = client:get("/")
      assert.are.equal("network", err.kind)
      assert.are.equal("connect", err.code)
    end)

    it("reports a timeout", function()
      client:close()
      client = assert(harness.client { timeout = 0.3, max_retries = 0 })
      local started = harness.now()
      local _, err = client:get("/fake/slow/", { query = { ms = 2000 } })
      assert.are.equal("timeout", err.kind)
      assert.is_true(harness.now() - started < 1.3)
    end)

    it("honours a per-request timeout", function()
      local _, err = client:get("/fake/slow/", { query = { ms = 2000 }, timeout = 0.2 })
      assert.are.equal("timeout", err.kind)
    end)
  end)

  describe("configuration", function()
    it("refuses empty tokens and tokens with whitespace before any request", function()
      for _, bad in ipairs { "", "sntryu_abc def", "abc\n", "a\0b" } do
        local c, err = harness.client { token = bad }
        assert.is_nil(c)
        assert.are.equal("invalid", err.kind)
      end
    end)

    it("refuses keepalive options out of range, saying which", function()
      for _, case in ipairs {
        { { keepalive_pool_size = 0 }, "keepalive_pool_size must be a whole number of at least 1" },
        { { keepalive_pool_size = 2.5 }, "keepalive_pool_size must be a whole number of at least 1" },
        { { keepalive_timeout = 0 }, "keepalive_timeout must be greater than 0" },
      } do
        local c, err = harness.client(case[1])
        assert.is_nil(c)
        assert.are.equal(case[2], err.detail)
      end
      assert(harness.client { keepalive_pool_size = 4, keepalive_timeout = 0.5 }):close()
    end)

    it("refuses a DSN passed as a token, saying what a DSN is for", function()
      local c, err = harness.client { token = "https://abc123@o1.ingest.sentry.io/42" }
      assert.is_nil(c)
      assert.are.equal("invalid", err.kind)
      assert.truthy(tostring(err):lower():find("ingest", 1, true))
    end)

    it("says where to get a token when there is none", function()
      local c, err = harness.client { token = harness.NONE }
      assert.is_nil(c)
      assert.truthy(err.detail:find("SENTRY_AUTH_TOKEN", 1, true))
    end)

    it("resolves the API root from region and base_url", function()
      local cases = {
        { { region = "de" }, "https://de.sentry.io/api/0/" },
        { { region = "us" }, "https://us.sentry.io/api/0/" },
        { { base_url = "https://sentry.example.com" }, "https://sentry.example.com/api/0/" },
        { { base_url = "https://sentry.example.com/api/0" }, "https://sentry.example.com/api/0/" },
        { { base_url = "https://example.com/sentry/" }, "https://example.com/sentry/api/0/" },
      }
      for _, case in ipairs(cases) do
        local opts = case[1]
        if opts.region then opts.base_url = harness.NONE end
        local c = assert(harness.client(opts))
        assert.are.equal(case[2], c.base_url)
        c:close()
      end
      local default = assert(sentry.new { token = tokens.user_full, config = false, env = function() end })
      assert.are.equal("https://sentry.io/api/0/", default.base_url)
      default:close()
    end)

    it("rejects an unknown region and plain http to a remote host", function()
      local c, err = harness.client { region = "mars", base_url = harness.NONE }
      assert.is_nil(c)
      assert.truthy(err.detail:find("mars", 1, true))
      c, err = harness.client { base_url = "http://sentry.example.com" }
      assert.is_nil(c)
      assert.truthy(err.detail:find("allow_http", 1, true))
      assert(harness.client { base_url = "http://sentry.example.com", allow_http = true }):close()
    end)

    it("takes the org and API root from an organization token", function()
      local org_token = tokens.org_token(server.url, "acme")
      local c = assert(sentry.new { token = org_token, config = false, env = function() end })
      assert.are.equal("acme", c.org)
      assert.are.equal(server.url .. "/api/0/", c.base_url)
      assert.are.equal("org", c.token_info.type)
      local res = assert(c:get("/"))
      assert.are.same({ "org:ci" }, res.body.auth.scopes)
      c:close()
    end)

    it("reads SENTRY_AUTH_TOKEN, SENTRY_URL and SENTRY_ORG", function()
      local env = { SENTRY_AUTH_TOKEN = tokens.user_full, SENTRY_URL = server.url, SENTRY_ORG = "acme" }
      local c = assert(sentry.new { config = false, env = function(name) return env[name] end })
      assert.are.equal(server.url .. "/api/0/", c.base_url)
      assert.are.equal("acme", c.org)
      assert(c:get("/organizations/{org}/"))
      c:close()
    end)

    it("raises on programming mistakes", function()
      assert.has_error(function() sentry.new "token" end)
      assert.has_error(function() sentry.new { timeout = "10" } end)
      assert.has_error(function() sentry.new { tokne = "x" } end)
      assert.has_error(function() client:get(42) end)
      assert.has_error(function() client:get("/", "opts") end)
      assert.has_error(function() client.get("/") end)
    end)

    it("refuses header injection", function()
      assert.has_error(function()
        client:get("/fake/echo/", { headers = { ["X-Bad"] = "a\r\nX-Injected: 1" } })
      end)
      assert.has_error(function() client:get("/fake/echo/", { headers = { ["Bad Name"] = "1" } }) end)
    end)
  end)

  describe("lifecycle", function()
    it("closes idempotently and refuses use after close", function()
      local c = assert(harness.client())
      c:close()
      c:close()
      assert.has_error(function() c:get("/") end, "attempt to use a closed client")
      assert.truthy(tostring(c):find("closed", 1, true))
    end)

    it("never shows the token in tostring", function()
      local c = assert(harness.client { token = tokens.distinctive })
      local shown = tostring(c)
      assert.is_nil(shown:find(tokens.DISTINCTIVE_MARKER, 1, true))
      assert.truthy(shown:find("sntryu_", 1, true))
      c:close()
    end)

    it("keeps the token out of every error message", function()
      local c = assert(harness.client { token = tokens.distinctive, max_retries = 0 })
      local failures = {
        { "/organizations/nope/projects/" },
        { "/fake/status/500/", { query = { shape = "error_id" } } },
        { "/fake/invalid-json/" },
        { "https://elsewhere.example.com/" },
        { "/fake/slow/", { query = { ms = 1000 }, timeout = 0.1 } },
      }
      for _, case in ipairs(failures) do
        local _, err = c:get(case[1], case[2])
        assert.is_table(err)
        assert.is_nil(tostring(err):find(tokens.DISTINCTIVE_MARKER, 1, true))
      end
      c:close()
    end)
  end)
end)
