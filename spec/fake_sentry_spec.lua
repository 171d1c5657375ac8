-- The fake Sentry server itself, checked with the curl command line (never with
-- the client under test) against the behaviour described for the real API.

local cjson = require "cjson"
local fake = require "fake_sentry"
local shell = require "shell"
local tokens = require "tokens"

local server

local run, capture, quote = shell.run, shell.capture, shell.quote

local function get(path, opts)
  return fake.http("GET", server.url .. path, opts)
end

local function call(method, path, opts)
  return fake.http(method, server.url .. path, opts)
end

local function with_token(token, extra)
  local opts = { token = token }
  for k, v in pairs(extra or {}) do opts[k] = v end
  return opts
end

-- curl's -w timings for one request, as numbers.
local function timings(url)
  local out = capture("curl -s -N -o /dev/null -w '%{time_starttransfer} %{time_total}' " .. quote(url))
  local first_byte, total = out:match("^(%S+) (%S+)$")
  return tonumber(first_byte), tonumber(total)
end

local function link_for(url_base, rel, cursor, results)
  return string.format('<%s&cursor=%s>; rel="%s"; results="%s"; cursor="%s"',
    url_base, cursor, rel, results, cursor)
end

local function slugs(list)
  local out = {}
  for i, item in ipairs(list) do out[i] = item.slug end
  return out
end

-- Zombies count as gone: the nginx master is reaped by init, maybe much later.
local function is_alive(pid)
  return run("kill -0 " .. pid .. " 2>/dev/null && ! ps -o stat= -p " .. pid .. " | grep -q '^Z'")
end

local function wait_until(predicate, seconds)
  for _ = 1, seconds * 10 do
    if predicate() then return true end
    run("sleep 0.1")
  end
  return predicate()
end

local function have(command)
  return run("command -v " .. command .. " >/dev/null 2>&1")
end

local FULL_SCOPES = {
  "alerts:read", "alerts:write", "event:read", "event:write", "member:read",
  "org:read", "org:write", "project:admin", "project:read", "project:releases",
  "project:write", "team:read", "team:write",
}

local FORBIDDEN = { detail = "You do not have permission to perform this action." }
local NOT_FOUND = { detail = "The requested resource does not exist" }

describe("fake Sentry server", function()
  setup(function()
    server = fake.start()
  end)

  before_each(function()
    fake.reset()
  end)

  describe("start()", function()
    it("describes where the server listens", function()
      assert.matches("^http://127%.0%.0%.1:%d+$", server.url)
      assert.equals(server.url .. "/api/0/", server.api)
      assert.equals(tonumber(server.url:match(":(%d+)$")), server.port)
      if have("openssl") then
        assert.matches("^https://127%.0%.0%.1:%d+$", server.https_url)
      end
    end)

    it("returns the running server when called again", function()
      assert.equals(server, fake.start())
    end)

    it("reuses the server named by SENTRY_FAKE_URL", function()
      local out = capture("SENTRY_FAKE_URL=" .. quote(server.url) .. " SENTRY_FAKE_PREFIX=/nowhere "
        .. "lua5.4 -e \"package.path = 'spec/support/?.lua;' .. package.path "
        .. "local s = require('fake_sentry').start() io.write(s.url, ' ', s.prefix, ' ', tostring(s.external))\"")
      assert.equals(server.url .. " /nowhere true", out)
    end)
  end)

  describe("tokens", function()
    it("have Sentry's user and legacy formats", function()
      for _, name in ipairs({ "user_full", "user_read", "unknown_to_server", "distinctive" }) do
        assert.matches("^sntryu_" .. string.rep("[0-9a-f]", 64) .. "$", tokens[name])
      end
      assert.matches("^" .. string.rep("[0-9a-f]", 64) .. "$", tokens.legacy)
      assert.truthy(tokens.distinctive:find(tokens.DISTINCTIVE_MARKER, 1, true))
    end)

    it("build organization tokens with a base64 JSON payload and a 43-character secret", function()
      local token = tokens.org_token("https://sentry.example", "acme")
      local payload, secret = token:match("^sntrys_([^_]+)_([^_]+)$")
      assert.truthy(payload, "exactly two underscores")
      assert.matches("^[A-Za-z0-9+/]+=*$", payload)
      assert.equals(0, #payload % 4)
      assert.matches("^" .. string.rep("[A-Za-z0-9+/]", 43) .. "$", secret)
      local decoded = capture("printf %s " .. quote(payload) .. " | base64 -d")
      assert.equals('{"iat": 1700000000.25, "url": "https://sentry.example", '
        .. '"region_url": "https://sentry.example", "org": "acme"}', decoded)
    end)
  end)

  describe("GET /api/0/", function()
    it("reports a user token's expanded, sorted scopes and its user", function()
      local res = get("/api/0/", with_token(tokens.user_full))
      assert.equals(200, res.status)
      assert.equals("application/json", res.headers["content-type"])
      assert.same(FULL_SCOPES, res.json.auth.scopes)
      assert.same({ id = "1", email = "jane@example.com", username = "jane", name = "Jane" }, res.json.user)
      assert.equals("0", res.json.version)
    end)

    it("reports the read-only token's scopes", function()
      local res = get("/api/0/", with_token(tokens.user_read))
      assert.same({ "alerts:read", "event:read", "member:read", "org:read", "project:read", "team:read" },
        res.json.auth.scopes)
    end)

    it("accepts legacy tokens and the distinctive token", function()
      assert.same({ "event:read", "org:read", "project:read" },
        get("/api/0/", with_token(tokens.legacy)).json.auth.scopes)
      assert.same(FULL_SCOPES, get("/api/0/", with_token(tokens.distinctive)).json.auth.scopes)
    end)

    it("gives organization tokens org:ci and no user", function()
      local res = get("/api/0/", with_token(tokens.org_token(server.url, "acme")))
      assert.same({ "org:ci" }, res.json.auth.scopes)
      assert.equals(cjson.null, res.json.user)
    end)

    it("answers 200 with nulls without a valid token", function()
      for _, opts in ipairs({ {}, with_token(tokens.unknown_to_server) }) do
        local res = get("/api/0/", opts)
        assert.equals(200, res.status)
        assert.equals('{"auth":null,"user":null,"version":"0"}', res.body)
      end
    end)
  end)

  describe("authentication", function()
    it("rejects a missing Authorization header", function()
      local res = get("/api/0/organizations/")
      assert.equals(401, res.status)
      assert.same({ detail = "Authentication credentials were not provided." }, res.json)
    end)

    it("rejects a token with spaces", function()
      local res = get("/api/0/organizations/", { headers = { Authorization = "Bearer abc def" } })
      assert.equals(401, res.status)
      assert.same({ detail = "Invalid token header. Token string should not contain spaces." }, res.json)
    end)

    it("rejects unknown tokens", function()
      local res = get("/api/0/organizations/", with_token(tokens.unknown_to_server))
      assert.equals(401, res.status)
      assert.same({ detail = "Invalid token" }, res.json)
    end)

    it("rejects organization tokens with a wrong secret", function()
      local forged = tokens.org_token(server.url, "acme"):gsub("_[^_]+$", "_" .. string.rep("A", 43))
      local res = get("/api/0/organizations/acme/projects/", with_token(forged))
      assert.equals(401, res.status)
      assert.same({ detail = "Invalid org token" }, res.json)
    end)

    it("confines organization tokens to their organization", function()
      local token = tokens.org_token(server.url, "acme")
      local created = call("POST", "/api/0/projects/acme/project-001/releases/",
        with_token(token, { body = '{"version":"1.0.0"}' }))
      assert.equals(201, created.status)
      local other = call("POST", "/api/0/projects/acme/project-001/releases/",
        with_token(tokens.org_token(server.url, "empty"), { body = '{"version":"2.0.0"}' }))
      assert.equals(403, other.status)
      assert.same(FORBIDDEN, other.json)
    end)
  end)

  describe("scopes", function()
    it("let a read token read a project but not change or delete it", function()
      local opts = with_token(tokens.user_read)
      assert.equals(200, get("/api/0/projects/acme/project-007/", opts).status)
      local put = call("PUT", "/api/0/projects/acme/project-007/",
        with_token(tokens.user_read, { body = '{"name":"Renamed"}' }))
      assert.equals(403, put.status)
      assert.same(FORBIDDEN, put.json)
      local delete = call("DELETE", "/api/0/projects/acme/project-007/", opts)
      assert.equals(403, delete.status)
      assert.same(FORBIDDEN, delete.json)
    end)

    it("let a read token bookmark a project, as Sentry's relaxed PUT does", function()
      local put = call("PUT", "/api/0/projects/acme/project-007/",
        with_token(tokens.user_read, { body = '{"isBookmarked":true}' }))
      assert.equals(200, put.status)
      assert.is_true(put.json.isBookmarked)
    end)

    it("answers 404 for an unknown organization before checking scopes", function()
      local res = get("/api/0/organizations/nope/projects/", with_token(tokens.org_token(server.url, "acme")))
      assert.equals(404, res.status)
      assert.same(NOT_FOUND, res.json)
    end)

    it("reject listing organizations with an org:ci token", function()
      assert.equals(403, get("/api/0/organizations/", with_token(tokens.org_token(server.url, "acme"))).status)
    end)
  end)

  describe("projects", function()
    it("returns project details with the organization", function()
      local res = get("/api/0/projects/acme/project-042/", with_token(tokens.user_full))
      assert.equals(200, res.status)
      assert.equals("project-042", res.json.slug)
      assert.equals("Project 042", res.json.name)
      assert.equals("acme", res.json.organization.slug)
    end)

    it("echoes the merged project on PUT and keeps the change until a reset", function()
      local put = call("PUT", "/api/0/projects/acme/project-042/",
        with_token(tokens.user_full, { body = '{"name":"Renamed","platform":"lua","unknown":1}' }))
      assert.equals(200, put.status)
      assert.equals("Renamed", put.json.name)
      assert.equals("lua", put.json.platform)
      assert.equals("project-042", put.json.slug)
      assert.is_nil(put.json.unknown)
      assert.equals("Renamed", get("/api/0/projects/acme/project-042/", with_token(tokens.user_full)).json.name)
      fake.reset()
      assert.equals("Project 042", get("/api/0/projects/acme/project-042/", with_token(tokens.user_full)).json.name)
    end)

    it("answers a malformed PUT body with a 400", function()
      local res = call("PUT", "/api/0/projects/acme/project-042/", with_token(tokens.user_full, { body = "{oops" }))
      assert.equals(400, res.status)
      assert.matches("^JSON parse error", res.json.detail)
    end)

    it("deletes with 204 and no body; the project is gone afterwards", function()
      local res = call("DELETE", "/api/0/projects/acme/project-002/", with_token(tokens.user_full))
      assert.equals(204, res.status)
      assert.equals("", res.body)
      assert.is_nil(res.headers["content-length"])
      assert.equals(404, get("/api/0/projects/acme/project-002/", with_token(tokens.user_full)).status)
      local list = get("/api/0/organizations/acme/projects/", with_token(tokens.user_full))
      assert.equals("249", list.headers["x-hits"])
      assert.equals("project-003", list.json[2].slug)
    end)

    it("creates releases: 201, then 208 for the same version", function()
      local opts = with_token(tokens.user_full, { body = '{"version":"abc123","ref":"main"}' })
      local created = call("POST", "/api/0/projects/acme/project-003/releases/", opts)
      assert.equals(201, created.status)
      assert.equals("abc123", created.json.version)
      assert.equals("main", created.json.ref)
      assert.same({ "project-003" }, slugs(created.json.projects))
      local again = call("POST", "/api/0/projects/acme/project-003/releases/", opts)
      assert.equals(208, again.status)
      assert.equals(created.json.id, again.json.id)
    end)

    it("answers a release without a version with a field error", function()
      local res = call("POST", "/api/0/projects/acme/project-003/releases/",
        with_token(tokens.user_full, { body = '{"ref":"main"}' }))
      assert.equals(400, res.status)
      assert.equals('{"version":["This field is required."]}', res.body)
    end)

    it("refuses releases without a release scope", function()
      local res = call("POST", "/api/0/projects/acme/project-003/releases/",
        with_token(tokens.user_read, { body = '{"version":"1"}' }))
      assert.equals(403, res.status)
    end)

    it("answers other methods with 405", function()
      local res = call("POST", "/api/0/projects/acme/project-003/", with_token(tokens.user_full))
      assert.equals(405, res.status)
      assert.same({ detail = 'Method "POST" not allowed.' }, res.json)
    end)
  end)

  describe("pagination", function()
    local projects_path = "/api/0/organizations/acme/projects/"

    it("lays out the first page's Link header like Sentry", function()
      local res = get(projects_path, with_token(tokens.user_full))
      local base = server.url .. projects_path .. "?"
      assert.equals(link_for(base, "previous", "0:0:1", "false") .. ", "
        .. link_for(base, "next", "0:100:0", "true"), res.headers["link"])
      assert.equals("250", res.headers["x-hits"])
      assert.equals(100, #res.json)
      assert.equals("project-001", res.json[1].slug)
      assert.equals("project-100", res.json[100].slug)
    end)

    it("keeps the other query parameters and drops the cursor", function()
      local res = get(projects_path .. "?per_page=50&cursor=0:50:0&query=a%20b", with_token(tokens.user_full))
      local base = server.url .. projects_path .. "?per_page=50&query=a%20b"
      assert.equals(link_for(base, "previous", "0:0:1", "true") .. ", "
        .. link_for(base, "next", "0:100:0", "true"), res.headers["link"])
      assert.equals("project-051", res.json[1].slug)
    end)

    it("marks the last page", function()
      local res = get(projects_path .. "?cursor=0:200:0", with_token(tokens.user_full))
      local base = server.url .. projects_path .. "?"
      assert.equals(link_for(base, "previous", "0:100:1", "true") .. ", "
        .. link_for(base, "next", "0:300:0", "false"), res.headers["link"])
      assert.equals(50, #res.json)
      assert.equals("project-250", res.json[50].slug)
    end)

    it("can be walked by following next links until results=\"false\"", function()
      local seen, url, pages = {}, server.url .. projects_path .. "?per_page=100", 0
      while url do
        local res = fake.http("GET", url, with_token(tokens.user_full))
        pages = pages + 1
        for _, project in ipairs(res.json) do seen[#seen + 1] = project.slug end
        local next_url, more = res.headers["link"]:match('<([^>]+)>; rel="next"; results="(%a+)"')
        url = more == "true" and next_url or nil
      end
      assert.equals(3, pages)
      assert.equals(250, #seen)
      assert.equals("project-250", seen[250])
    end)

    it("returns [] and no next page for an empty organization", function()
      local res = get("/api/0/organizations/empty/projects/", with_token(tokens.user_full))
      assert.equals("[]", res.body)
      assert.matches('rel="previous"; results="false"', res.headers["link"])
      assert.matches('rel="next"; results="false"', res.headers["link"])
    end)

    it("pages through issues", function()
      local res = get("/api/0/organizations/acme/issues/?cursor=0:100:0", with_token(tokens.user_full))
      assert.equals(20, #res.json)
      assert.equals("120", res.headers["x-hits"])
      assert.equals(server.url .. "/organizations/acme/issues/" .. res.json[1].id .. "/", res.json[1].permalink)
    end)

    it("rejects per_page above 100", function()
      local res = get(projects_path .. "?per_page=101", with_token(tokens.user_full))
      assert.equals(400, res.status)
      assert.equals('{"detail":"Invalid per_page value. Cannot exceed 100."}', res.body)
      assert.equals(200, get(projects_path .. "?per_page=100", with_token(tokens.user_full)).status)
    end)

    it("rejects a non-numeric or non-positive per_page and a malformed cursor", function()
      for _, query in ipairs({ "per_page=abc", "per_page=0", "per_page=-3", "cursor=garbage" }) do
        local res = get(projects_path .. "?" .. query, with_token(tokens.user_full))
        assert.equals(400, res.status, query)
        assert.equals("string", type(res.json.detail), query)
      end
    end)

    it("builds links from the Host the client used", function()
      local res = get(projects_path, with_token(tokens.user_full, { headers = { Host = "sentry.example:8443" } }))
      assert.matches("^<http://sentry%.example:8443/api/0/organizations/acme/projects/%?&cursor=", res.headers["link"])
    end)

    it("pages synthetic items quickly, to the very end", function()
      local res = get("/api/0/fake/items/?total=100000&cursor=0:99900:0")
      assert.equals(100, #res.json)
      assert.same({ id = "100000", n = 100000 }, res.json[100])
      assert.matches('rel="next"; results="false"; cursor="0:100000:0"$', res.headers["link"])
    end)
  end)

  describe("rate-limit headers", function()
    it("come with every real-shaped response, counted per token, route and method", function()
      local first = get("/api/0/organizations/", with_token(tokens.user_full))
      local second = get("/api/0/organizations/", with_token(tokens.user_full))
      assert.equals("1000", second.headers["x-sentry-rate-limit-limit"])
      local remaining = tonumber(second.headers["x-sentry-rate-limit-remaining"])
      local reset = tonumber(second.headers["x-sentry-rate-limit-reset"])
      if tonumber(first.headers["x-sentry-rate-limit-reset"]) == reset then
        assert.equals(tonumber(first.headers["x-sentry-rate-limit-remaining"]) - 1, remaining)
      else -- the two fell into two 10 s windows: the second is the first of its window
        assert.equals(999, remaining)
      end
      assert.equals(0, reset % 10)
      assert.is_true(reset > os.time() - 1 and reset <= os.time() + 11)
      assert.equals("25", second.headers["x-sentry-rate-limit-concurrentlimit"])
      assert.equals("24", second.headers["x-sentry-rate-limit-concurrentremaining"])

      local other_route = get("/api/0/organizations/acme/", with_token(tokens.user_full))
      assert.equals("999", other_route.headers["x-sentry-rate-limit-remaining"])
    end)
  end)

  describe("/api/0/fake/echo/", function()
    it("returns the request as received", function()
      local res = call("POST", "/api/0/fake/echo/some/path?x=1&x=2&y=%20z", {
        headers = { ["X-Custom"] = "yes", ["Content-Type"] = "application/json" },
        body = '{"a":1}',
      })
      assert.equals(200, res.status)
      assert.equals("POST", res.json.method)
      assert.equals("/api/0/fake/echo/some/path?x=1&x=2&y=%20z", res.json.uri)
      assert.equals("/api/0/fake/echo/some/path", res.json.path)
      assert.same({ x = { "1", "2" }, y = " z" }, res.json.args)
      assert.equals("yes", res.json.headers["x-custom"])
      assert.equals("application/json", res.json.headers["content-type"])
      assert.equals('{"a":1}', res.json.body)
    end)

    it("keeps repeated headers and reports a missing body as null", function()
      local res = get("/api/0/fake/echo/", { curl_args = "-H 'X-Twice: 1' -H 'x-twice: 2'" })
      assert.same({ "1", "2" }, res.json.headers["x-twice"])
      assert.equals(cjson.null, res.json.body)
    end)
  end)

  describe("/api/0/fake/status/", function()
    local shapes = {
      detail_string = { 403, "application/json", '{"detail":"You do not have permission to perform this action."}' },
      field_errors = { 400, "application/json",
        '{"projects":["Invalid project slugs"],"version":["This field is required."]}' },
      bare_string = { 500, "application/json", '"Some text"' },
      error_id = { 500, "application/json", '{"detail":"Internal Error","errorId":"abc123"}' },
      message = { 410, "application/json", '{"message":"This API no longer exists."}' },
      empty = { 503, nil, "" },
    }
    for shape, expected in pairs(shapes) do
      it("sends the " .. shape .. " shape", function()
        local res = get("/api/0/fake/status/" .. expected[1] .. "/?shape=" .. shape)
        assert.equals(expected[1], res.status)
        if expected[2] then assert.equals(expected[2], res.headers["content-type"]) end
        assert.equals(expected[3], res.body)
      end)
    end

    it("sends structured details", function()
      local res = get("/api/0/fake/status/401/?shape=detail_object")
      assert.equals(401, res.status)
      assert.equals("sso-required", res.json.detail.code)
      assert.equals("string", type(res.json.detail.message))
      assert.equals("table", type(res.json.detail.extra))
    end)

    it("adds the deprecation headers to brownouts", function()
      local res = get("/api/0/fake/status/410/?shape=message")
      assert.truthy(res.headers["x-sentry-deprecation-date"])
      assert.truthy(res.headers["x-sentry-replacement-endpoint"])
    end)

    it("sends a proxy's HTML page", function()
      local res = get("/api/0/fake/status/502/?shape=html")
      assert.equals(502, res.status)
      assert.equals("text/html", res.headers["content-type"])
      assert.matches("<title>502 Bad Gateway</title>", res.body)
    end)

    it("never sends a body with 204", function()
      local res = call("DELETE", "/api/0/fake/status/204/")
      assert.equals(204, res.status)
      assert.equals("", res.body)
    end)
  end)

  describe("/api/0/fake/flaky/", function()
    it("fails the first N requests, then succeeds, and records every request", function()
      local statuses = {}
      for i = 1, 3 do statuses[i] = get("/api/0/fake/flaky/f1/?fail=2&status=503").status end
      assert.same({ 503, 503, 200 }, statuses)
      assert.same({ ok = true, attempt = 4 }, get("/api/0/fake/flaky/f1/?fail=2&status=503").json)

      local records = fake.requests("f1")
      assert.equals(4, #records)
      assert.same({ 1, 2, 3, 4 }, { records[1].n, records[2].n, records[3].n, records[4].n })
      assert.same({ 503, 503, 200, 200 },
        { records[1].status, records[2].status, records[3].status, records[4].status })
      assert.equals("GET", records[1].method)
      assert.is_true(records[2].time >= records[1].time)
      assert.is_true(math.abs(records[1].time - os.time()) < 5)
    end)

    it("sends 429s like Sentry: JSON detail as text/html, no Retry-After", function()
      local res = get("/api/0/fake/flaky/f2/?fail=1&status=429")
      assert.equals(429, res.status)
      assert.equals("text/html", res.headers["content-type"])
      assert.is_nil(res.headers["retry-after"])
      assert.matches("^You are attempting to use this endpoint too frequently%. Limit is %d+ requests in %d+ seconds$",
        cjson.decode(res.body).detail)
    end)

    it("adds Retry-After as seconds or as an HTTP date, and a rate-limit reset", function()
      assert.equals("7", get("/api/0/fake/flaky/f3/?fail=1&status=503&retry_after=7").headers["retry-after"])
      local dated = get("/api/0/fake/flaky/f4/?fail=1&status=429&retry_after=7&retry_after_date=1")
      assert.matches("^%a%a%a, %d%d %a%a%a %d%d%d%d %d%d:%d%d:%d%d GMT$", dated.headers["retry-after"])
      local reset = get("/api/0/fake/flaky/f5/?fail=1&status=429&reset_in=5")
      assert.equals("0", reset.headers["x-sentry-rate-limit-remaining"])
      local reset_at = tonumber(reset.headers["x-sentry-rate-limit-reset"])
      assert.is_true(reset_at >= os.time() + 3 and reset_at <= os.time() + 6)
    end)

    it("counts each key separately, until a reset", function()
      assert.equals(503, get("/api/0/fake/flaky/a/?fail=1").status)
      assert.equals(503, get("/api/0/fake/flaky/b/?fail=1").status)
      assert.equals(200, get("/api/0/fake/flaky/a/?fail=1").status)
      fake.reset()
      assert.equals(503, get("/api/0/fake/flaky/a/?fail=1").status)
      assert.equals(1, #fake.requests("a"))
    end)
  end)

  describe("/api/0/fake/limited/", function()
    it("limits per fixed window and says so like Sentry", function()
      local window = 3600
      local responses = {}
      for i = 1, 3 do responses[i] = get("/api/0/fake/limited/l1/?limit=2&window=" .. window) end
      assert.same({ 200, 200, 429 }, { responses[1].status, responses[2].status, responses[3].status })
      assert.same({ "1", "0", "0" }, {
        responses[1].headers["x-sentry-rate-limit-remaining"],
        responses[2].headers["x-sentry-rate-limit-remaining"],
        responses[3].headers["x-sentry-rate-limit-remaining"],
      })
      local limited = responses[3]
      assert.equals("2", limited.headers["x-sentry-rate-limit-limit"])
      assert.equals((math.floor(os.time() / window) + 1) * window,
        tonumber(limited.headers["x-sentry-rate-limit-reset"]))
      assert.is_nil(limited.headers["retry-after"])
      assert.equals("text/html", limited.headers["content-type"])
      assert.equals("You are attempting to use this endpoint too frequently. Limit is 2 requests in 3600 seconds",
        cjson.decode(limited.body).detail)
      assert.equals(3, #fake.requests("l1"))
      assert.equals(429, fake.requests("l1")[3].status)
    end)
  end)

  describe("awkward responses", function()
    it("delays the whole response", function()
      local first_byte, total = timings(server.url .. "/api/0/fake/slow/?ms=300")
      assert.is_true(first_byte >= 0.29 and total >= 0.29)
    end)

    it("stalls in the middle of the body", function()
      local first_byte, total = timings(server.url .. "/api/0/fake/slow/?body_ms=300")
      assert.is_true(first_byte < 0.2)
      assert.is_true(total >= 0.29)
    end)

    it("sends chunked JSON", function()
      local res = get("/api/0/fake/chunked/?chunks=4")
      assert.equals("chunked", res.headers["transfer-encoding"])
      assert.equals(4, #res.json)
      assert.equals(4, res.json[4].chunk)
    end)

    it("sends big bodies of the requested size, gzipped on request", function()
      local plain = get("/api/0/fake/big/?bytes=50000")
      assert.equals("50000", plain.headers["content-length"])
      assert.equals(50000, #plain.body)
      assert.equals(49989, #plain.json.data)
      local gzipped = get("/api/0/fake/big/?bytes=50000", { headers = { ["Accept-Encoding"] = "gzip" } })
      assert.equals("gzip", gzipped.headers["content-encoding"])
      assert.is_true(#gzipped.body < 5000)
      local small = get("/api/0/fake/big/?bytes=500", { headers = { ["Accept-Encoding"] = "gzip" } })
      assert.is_nil(small.headers["content-encoding"])
    end)

    it("sends broken JSON and plain text", function()
      local broken = get("/api/0/fake/invalid-json/")
      assert.equals(200, broken.status)
      assert.equals("application/json", broken.headers["content-type"])
      assert.is_false(pcall(cjson.decode, broken.body))
      assert.equals("text/plain", get("/api/0/fake/text/").headers["content-type"])
    end)

    it("moves a resource like Sentry's ProjectMoved", function()
      local res = get("/api/0/fake/moved/")
      assert.equals(302, res.status)
      assert.equals("resource-moved", res.json.detail.code)
      assert.equals(res.headers["location"], res.json.detail.extra.url)
      assert.equals("moved-target", res.json.detail.extra.slug)
    end)

    it("redirects to another origin on the same port", function()
      local res = get("/api/0/fake/redirect-offsite/")
      assert.equals(302, res.status)
      assert.equals("http://localhost:" .. server.port .. "/api/0/fake/echo/", res.headers["location"])
    end)

    it("sends a header of 10 KiB", function()
      assert.equals(10240, #get("/api/0/fake/huge-header/").headers["x-fake-huge"])
    end)

    it("sends nonsense in the rate-limit and Link headers", function()
      local res = get("/api/0/fake/garbage-header/")
      assert.equals(200, res.status)
      assert.equals("soon", res.headers["x-sentry-rate-limit-reset"])
      assert.equals("lots", res.headers["x-sentry-rate-limit-limit"])
      assert.equals('<broken; rel="next"; results=maybe, <>; cursor=', res.headers["link"])
    end)

    it("breaks the HTTP framing when asked to", function()
      -- curl's exit codes: 8 weird server reply, 52 empty reply, 18 partial file.
      assert.equals(8, get("/api/0/fake/garbage-header/?raw=1").curl_exit)
      assert.equals(52, get("/api/0/fake/close/").curl_exit)
      assert.equals(18, get("/api/0/fake/truncated/").curl_exit)
    end)

    it("answers unknown paths with Sentry's 404", function()
      local res = get("/api/0/no/such/thing/")
      assert.equals(404, res.status)
      assert.same(NOT_FOUND, res.json)
    end)
  end)

  describe("stats", function()
    it("count requests and connections, so keep-alive is observable", function()
      local url = quote(server.url .. "/api/0/fake/echo/")
      assert.is_true(run("curl -s -o /dev/null -o /dev/null " .. url .. " " .. url))
      local stats = fake.stats()
      assert.equals(2, stats.requests)
      assert.equals(1, stats.connections)
      assert.is_true(run("curl -s -o /dev/null " .. url))
      stats = fake.stats()
      assert.equals(3, stats.requests)
      assert.equals(2, stats.connections)
      assert.equals(3, stats.by_path["/api/0/fake/echo/"])
    end)

    it("do not count the specs' own /__fake/ requests", function()
      fake.stats()
      fake.requests("nothing")
      assert.equals(0, fake.stats().requests)
      assert.same({}, fake.requests("nothing"))
    end)

    it("record the highest number of requests in flight", function()
      local url = quote(server.url .. "/api/0/fake/concurrency/?ms=400")
      local one = "curl -s -o /dev/null " .. url
      assert.is_true(run("(" .. one .. " & " .. one .. " & " .. one .. " & wait)"))
      local stats = fake.stats()
      assert.equals(3, stats.max_in_flight)
      assert.equals(0, stats.in_flight)
    end)
  end)

  describe("TLS listener", function()
    it("serves the same routes with a self-signed certificate", function()
      if not server.https_url then
        pending("openssl is not available")
        return
      end
      local res = fake.http("GET", server.https_url .. "/api/0/organizations/acme/projects/",
        with_token(tokens.user_full, { insecure = true }))
      assert.equals(200, res.status)
      assert.matches("^<https://127%.0%.0%.1:" .. server.https_port .. "/", res.headers["link"])
      -- Without -k, curl must refuse the certificate: it is really TLS.
      assert.equals(60, fake.http("GET", server.https_url .. "/api/0/").curl_exit)
      assert.equals(200, fake.http("GET", server.https_url .. "/api/0/",
        { curl_args = "--cacert " .. quote(server.cert_file) }).status)
    end)
  end)

  describe("lifetime", function()
    local interpreters = {}
    for _, lua in ipairs({ "lua5.1", "lua5.3", "lua5.4", "luajit" }) do
      if have(lua) then interpreters[#interpreters + 1] = lua end
    end

    local function run_child(lua, code)
      return capture("env -u SENTRY_FAKE_URL -u SENTRY_FAKE_HTTPS_URL -u SENTRY_FAKE_PREFIX "
        .. lua .. " -e " .. quote("package.path = 'spec/support/?.lua;' .. package.path " .. code))
    end

    local function start_in_child(lua, ending)
      local out = run_child(lua, "local s = require('fake_sentry').start() "
        .. "io.write(s.pid, ' ', s.prefix) io.flush() " .. ending)
      local pid, prefix = out:match("^(%d+) (.+)$")
      assert.truthy(pid, out)
      return pid, prefix
    end

    local function dir_exists(path)
      return run("test -d " .. quote(path))
    end

    for _, lua in ipairs(interpreters) do
      it("stops nginx when a " .. lua .. " process ends", function()
        local pid, prefix = start_in_child(lua, "")
        assert.is_true(wait_until(function() return not is_alive(pid) end, 3))
        assert.is_true(wait_until(function() return not dir_exists(prefix) end, 3))
      end)
    end

    it("stops nginx even when the process skips finalizers", function()
      local pid, prefix = start_in_child("lua5.4", "os.exit(0, false)")
      assert.is_true(wait_until(function() return not is_alive(pid) end, 5))
      assert.is_true(wait_until(function() return not dir_exists(prefix) end, 5))
    end)

    it("tries another port when the chosen one is taken", function()
      -- The first port drawn is the one the spec's own server listens on.
      local out = run_child("lua5.4", "local draws, random = 0, math.random "
        .. "math.random = function(...) draws = draws + 1 "
        .. "if draws == 1 then return " .. server.port .. " end return random(...) end "
        .. "local s = require('fake_sentry').start() io.write(s.port, ' ', draws)")
      local port, draws = out:match("^(%d+) (%d+)$")
      assert.truthy(port, out)
      assert.are_not.equal(server.port, tonumber(port))
      assert.is_true(tonumber(draws) > 2)
    end)

    it("stop() stops the server at once", function()
      local out = run_child("lua5.4", "local fake = require('fake_sentry') local s = fake.start() "
        .. "fake.stop() io.write(os.execute('kill -0 ' .. s.pid .. ' 2>/dev/null && ! ps -o stat= -p ' .. s.pid "
        .. ".. ' | grep -q ^Z') and 'alive' or 'stopped')")
      assert.equals("stopped", out)
    end)
  end)

  describe("spec/support/fake-sentry", function()
    it("starts, locates and stops a server for other processes", function()
      local state = os.tmpname()
      os.remove(state)
      local env = "FAKE_SENTRY_STATE=" .. quote(state) .. " "
      local exports = capture(env .. "spec/support/fake-sentry start")
      local url = exports:match("export SENTRY_FAKE_URL='([^']+)'")
      local prefix = exports:match("export SENTRY_FAKE_PREFIX='([^']+)'")
      assert.truthy(url, exports)
      assert.equals(url .. "\n", capture(env .. "spec/support/fake-sentry url"))
      assert.equals(exports, capture(env .. "spec/support/fake-sentry start"))
      assert.equals(200, fake.http("GET", url .. "/api/0/").status)
      local pid = capture("cat " .. quote(prefix .. "/nginx.pid")):match("%d+")

      assert.is_true(run(env .. "spec/support/fake-sentry stop"))
      assert.falsy(is_alive(pid))
      assert.is_false(run(env .. "spec/support/fake-sentry url 2>/dev/null"))
    end)
  end)
end)
