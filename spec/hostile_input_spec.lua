-- A hostile or broken server (or config file) must not make a call run past
-- its timeout, raise where the API promises `nil, err`, or grow the client's
-- memory without bound.
local harness = require "harness"
local config = require "sentry.config"
local ini = require "sentry.ini"
local links = require "sentry.links"
local shell = require "shell"

-- The client's timeout in these specs: every hostile case must end well within it.
local TIMEOUT = 2

local unpack = table.unpack or unpack

local function pack(...)
  return { n = select("#", ...), ... }
end

-- Runs fn, returning its elapsed seconds and its results (nils included).
local function timed(fn, ...)
  local started = harness.now()
  local results = pack(fn(...))
  return harness.now() - started, unpack(results, 1, results.n)
end

-- Within timeout + 1 s, as the issue asks (the old code took 10 s to minutes);
-- the margin also holds under valgrind.
local function assert_quick(seconds, what)
  assert(seconds < TIMEOUT + 1, string.format("%s took %.2f s (timeout %d s)", what, seconds, TIMEOUT))
end

local function client(overrides)
  overrides = overrides or {}
  overrides.timeout = TIMEOUT
  return assert(harness.client(overrides))
end

local function server_url(path)
  return harness.server().url .. "/api/0" .. path
end

describe("hostile input", function()
  setup(function()
    harness.server()
  end)

  describe("takes linear time", function()
    -- Unclosed or unterminated markup, each about 120 KB.
    for _, unit in ipairs { "<title", "<title>", "<script", "<style>x", "<", "<title>a  b" } do
      it("on a 120 KB error page made of " .. unit, function()
        local c = client()
        local seconds, res, err = timed(c.get, c, "/fake/hostile/html/", { query = { unit = unit } })
        assert_quick(seconds, "an error page of " .. unit)
        assert.is_nil(res)
        assert.are.equal(502, err.status)
        assert.is_true(#tostring(err) < 500)
        c:close()
      end)
    end

    it("still finds the title of an ordinary error page", function()
      local c = client()
      local _, err = c:get("/fake/status/502/", { query = { shape = "html" } })
      assert.are.equal("502 Bad Gateway", err.detail)
      c:close()
    end)

    for _, case in ipairs {
      { "50k repeated header lines", { count = 50000 }, "r", string.rep("a, ", 49999) .. "a" },
      { "a header value with 90k inner spaces", { spaces = 90000 }, "x-fake-spaced",
        "a" .. string.rep(" ", 90000) .. "b" },
    } do
      local what, query, name, expected = case[1], case[2], case[3], case[4]
      it("on " .. what, function()
        local c = client()
        local seconds, res = timed(c.get, c, "/fake/hostile/headers/", { query = query })
        assert_quick(seconds, what)
        assert.are.equal(expected, res.headers[name])
        c:close()
      end)
    end

    it("on a Link parameter with 90k inner spaces", function()
      local value = "a" .. string.rep(" ", 90000) .. "b"
      local header = '<https://sentry.io/api/0/x/?cursor=1>; rel="next"; title=' .. value .. "   ; results=true"
      local seconds, parsed = timed(links.parse, header)
      assert_quick(seconds, "links.parse")
      assert.are.equal(value, parsed.next.params.title)
      assert.is_true(parsed.next.results)
    end)

    it("on an 80 KB config line with inner spaces", function()
      local value = "a" .. string.rep(" ", 80000) .. "b"
      local seconds, sections = timed(ini.parse, "[auth]\ntoken = " .. value .. "  \n", "test.ini")
      assert_quick(seconds, "ini.parse")
      assert.are.equal(value, sections.auth.token.value)
    end)

    it("when sentry.new reads such a config file", function()
      local dir = shell.capture("mktemp -d"):gsub("%s+$", "")
      shell.write_file(dir .. "/.sentryclirc", "[defaults]\norg = acme" .. string.rep(" ", 80000) .. "x\n")
      local seconds, values = timed(config.resolve, { home = dir, cwd = dir, env = function() return nil end })
      shell.run("rm -rf " .. shell.quote(dir))
      assert_quick(seconds, "reading the config file")
      assert.are.equal("acme" .. string.rep(" ", 80000) .. "x", values.org)
    end)

    it("on a base_url or config url with 80k inner slashes", function()
      local odd_url = "https://sentry.example.com/x" .. string.rep("/", 80000) .. "a/"
      local seconds, c = timed(client, { base_url = odd_url })
      assert_quick(seconds, "sentry.new")
      assert.are.equal(odd_url .. "api/0/", c.base_url)
      c:close()
      local dir = shell.capture("mktemp -d"):gsub("%s+$", "")
      shell.write_file(dir .. "/.sentryclirc", "[defaults]\nurl = " .. odd_url .. "\n")
      local values
      seconds, values = timed(config.resolve, { home = dir, cwd = dir, env = function() return nil end,
        token = harness.tokens.org_token("https://sentry.example.com", "acme") })
      shell.run("rm -rf " .. shell.quote(dir))
      assert_quick(seconds, "comparing the token's URL with the configured one")
      assert.are.equal("https://sentry.example.com", values.base_url)
    end)
  end)

  describe("never raises", function()
    for _, value in ipairs { "", ";", " ; charset=utf-8" } do
      it("on the Content-Type '" .. value .. "'", function()
        local c = client()
        local ok, items, err = pcall(c.collect, c, "/fake/hostile/content-type/", { query = { value = value } })
        assert.is_true(ok, tostring(items))
        assert.is_nil(items)
        assert.are.equal("decode", err.kind)
        assert.is_string(tostring(err))
        c:close()
      end)
    end

    it("on field errors that hold null, objects and numbers", function()
      local c = client()
      local ok, res, err = pcall(c.get, c, "/fake/hostile/field-errors/")
      assert.is_true(ok, tostring(res))
      assert.is_nil(res)
      assert.are.equal(400, err.status)
      assert.are.equal("name: a", err.detail)
      c:close()
    end)

    for _, moved_to in ipairs { "{}", "true", "5", "[\"x\"]" } do
      it("on a 301 whose detail.extra.url is " .. moved_to, function()
        local c = client()
        local _, err = c:get("/fake/hostile/moved/", { query = { url = moved_to } })
        assert.are.equal(301, err.status)
        local ok, text = pcall(tostring, err)
        assert.is_true(ok, text)
        assert.is_nil(err.location)
        c:close()
      end)
    end

    it("keeps a 301's detail.extra.url when it is a URL", function()
      local c = client()
      local target = server_url("/fake/echo/moved-target/")
      local _, err = c:get("/fake/hostile/moved/", { query = { url = '"' .. target .. '"' } })
      assert.are.equal(target, err.location)
      assert.truthy(tostring(err):find("moved to " .. target, 1, true))
      c:close()
    end)

    it("on a next link whose URL holds a space: a decode error saying so", function()
      local c = client()
      local next_url = server_url("/fake/hostile/link/?cursor=a b")
      local ok, items, err, state = pcall(c.collect, c, "/fake/hostile/link/",
        { query = { value = "<" .. next_url .. '>; rel="next"; results="true"; cursor="a b"' } })
      assert.is_true(ok, tostring(items))
      assert.is_nil(items)
      assert.are.equal("decode", err.kind)
      assert.truthy(err.detail:find("space", 1, true))
      -- the page that failed is not taken: resuming from state.cursor fetches it again
      assert.are.same({}, state.items)
      assert.is_false(state.done)
      c:close()
    end)
  end)

  describe("a malformed Link header", function()
    for _, header in ipairs {
      '<broken; rel="next"; results="true"',
      '<https://x/?cursor=1>; rel="next"; results="true"; cursor="unterminated',
      'https://x/?cursor=1; rel="next"',
      '<https://x/?cursor=1>; rel="next" junk',
    } do
      it("ends a walk with a decode error, not silently: " .. header, function()
        local c = client()
        local items, err, state = c:collect("/fake/hostile/link/", { query = { value = header } })
        assert.is_nil(items)
        assert.are.equal("decode", err.kind)
        assert.truthy(err.detail:find("Link header", 1, true), err.detail)
        assert.is_false(state.done)
        assert.are.same({}, state.items)
        c:close()
      end)
    end

    it("says what is wrong", function()
      local parsed, why = links.parse('<https://x/>; rel="next" junk')
      assert.is_nil(parsed)
      assert.are.equal("expected ',' or ';' at character 26", why)
    end)
  end)

  describe("bounded state", function()
    it("forgets the rate-limit state of the least recently used unknown paths", function()
      local c = client()
      local run = tostring(math.random(1, 1e9))
      local function path(i) return "/fake/limited/bound-" .. run .. "-" .. i .. "/" end
      local query = { query = { limit = 100, window = 60 } }
      assert(c:get("/organizations/acme/projects/"))
      assert(c:get(path(0), query))
      collectgarbage()
      collectgarbage()
      local before = collectgarbage("count")
      for i = 1, 1500 do
        assert(c:get(path(i), query))
        -- a path in steady use stays remembered
        if i % 100 == 0 then assert(c:get(path(0), query)) end
      end
      collectgarbage()
      collectgarbage()
      local grown_kb = collectgarbage("count") - before
      assert.is_nil(c:rate_limit("GET", path(1)))
      assert.is_table(c:rate_limit("GET", path(1500)))
      assert.is_table(c:rate_limit("GET", path(0)))
      -- catalogue endpoints are always remembered
      assert.is_table(c:rate_limit("GET", "/organizations/{org}/projects/"))
      assert(grown_kb < 400, string.format("the client grew by %.0f KB", grown_kb))
      c:close()
    end)
  end)
end)
