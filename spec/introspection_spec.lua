-- luacheck: std +busted
-- What a token may do: whoami, can, check_scopes, and the scope details every
-- 403 carries. The fake answers GET /api/0/ with the token's expanded scopes.
local harness = require "harness"
local fake = harness.fake
local tokens = harness.tokens

local PROJECT = "/projects/{org}/{project}/"
local PROJECT_PATH = "/api/0/projects/acme/project-001/"
local PROJECTS = "/organizations/{org}/projects/"

local READ_SCOPES = { "alerts:read", "event:read", "member:read", "org:read", "project:read", "team:read" }

local function requests_to(path)
  return fake.stats().by_path[path] or 0
end

describe("introspection", function()
  local server

  setup(function()
    server = harness.server()
  end)

  before_each(function()
    fake.reset()
  end)

  describe("whoami", function()
    it("returns the token's scopes, user and type", function()
      local client = assert(harness.client { token = tokens.user_read })
      local info = assert(client:whoami())
      assert.are.same(READ_SCOPES, info.scopes)
      assert.are.equal("user", info.token_type)
      assert.are.equal("jane", info.user.username)
      client:close()
    end)

    it("asks the server once per client", function()
      local client = assert(harness.client())
      local first = assert(client:whoami())
      local second = assert(client:whoami())
      assert.are.same(first, second)
      assert.are.equal(1, requests_to("/api/0/"))
      -- each call hands out a copy: changing it cannot grant scopes
      first.scopes[#first.scopes + 1] = "project:admin"
      assert.are_not.same(first.scopes, client:whoami().scopes)
      client:close()
    end)

    it("knows an organization token: type org, scope org:ci, no user", function()
      local client = assert(harness.client { token = tokens.org_token(server.url, "acme") })
      local info = assert(client:whoami())
      assert.are.equal("org", info.token_type)
      assert.are.same({ "org:ci" }, info.scopes)
      assert.is_nil(info.user)
      client:close()
    end)

    it("fails with kind unauthorized for a token the server does not know", function()
      local client = assert(harness.client { token = tokens.unknown_to_server })
      local info, err = client:whoami()
      assert.is_nil(info)
      assert.are.equal("unauthorized", err.kind)
      client:close()
    end)
  end)

  describe("can", function()
    local client

    before_each(function()
      client = assert(harness.client { token = tokens.user_read })
    end)

    after_each(function()
      client:close()
    end)

    it("says true for a call the token's scopes allow", function()
      assert.is_true(client:can("GET", PROJECTS))
      assert.is_true(client:can("get", "/api/0/projects/acme/project-001/"))
    end)

    it("says false and names the scopes that would allow the call", function()
      local ok, needed = client:can("DELETE", PROJECT)
      assert.is_false(ok)
      assert.are.same({ "project:admin" }, needed)
    end)

    it("answers from one whoami, without calling the endpoint", function()
      client:can("DELETE", PROJECT)
      client:can("GET", PROJECTS)
      assert.are.equal(1, requests_to("/api/0/"))
      assert.are.equal(0, requests_to(PROJECT_PATH))
      assert.are.equal(0, requests_to("/api/0/organizations/acme/projects/"))
    end)

    it("assumes an endpoint the catalogue does not know is callable", function()
      assert.is_true(client:can("GET", "/fake/echo/anything/"))
      assert.are.equal(0, requests_to("/api/0/"))
    end)

    it("expands the token's scopes by the hierarchy", function()
      local admin = assert(harness.client()) -- project:admin implies project:write and read
      assert.is_true(admin:can("DELETE", PROJECT))
      assert.is_true(admin:can("PUT", PROJECT))
      admin:close()
    end)
  end)

  describe("check_scopes = true", function()
    it("refuses a DELETE the read-only token cannot make, without sending it", function()
      local client = assert(harness.client { token = tokens.user_read, check_scopes = true })
      local res, err = client:delete(PROJECT, { params = { project = "project-001" } })
      assert.is_nil(res)
      assert.are.equal("scope", err.kind)
      assert.are.same({ "project:admin" }, err.required_scopes)
      assert.are.same(READ_SCOPES, err.token_scopes)
      local message = tostring(err)
      assert.matches("needs one of: project:admin", message, 1, true)
      assert.matches("token has: alerts:read, event:read", message, 1, true)
      assert.are.equal(0, requests_to(PROJECT_PATH))
      assert.are.equal(1, fake.stats().requests) -- only GET /api/0/
      client:close()
    end)

    it("still sends the calls the token may make", function()
      local client = assert(harness.client { token = tokens.user_read, check_scopes = true })
      local res = assert(client:get(PROJECT, { params = { project = "project-001" } }))
      assert.are.equal(200, res.status)
      client:close()
    end)
  end)

  describe("403 errors", function()
    it("carry the endpoint's scopes, and the token's after whoami", function()
      local client = assert(harness.client { token = tokens.user_read })
      local _, err = client:delete(PROJECT, { params = { project = "project-001" } })
      assert.are.equal("forbidden", err.kind)
      assert.are.equal(403, err.status)
      assert.are.same({ "project:admin" }, err.required_scopes)
      assert.is_nil(err.token_scopes)
      assert.matches("needs one of: project:admin", tostring(err), 1, true)

      assert(client:whoami())
      _, err = client:delete(PROJECT, { params = { project = "project-001" } })
      assert.are.same({ "project:admin" }, err.required_scopes)
      assert.are.same(READ_SCOPES, err.token_scopes)
      assert.matches("needs one of: project:admin; token has: alerts:read, event:read, member:read, "
        .. "org:read, project:read, team:read", tostring(err), 1, true)
      assert(client:get(PROJECT, { params = { project = "project-001" } })) -- still there
      client:close()
    end)

    it("name an organization token's only scope when it lists projects", function()
      local client = assert(harness.client { token = tokens.org_token(server.url, "acme") })
      assert(client:whoami())
      local items, err = client:collect(PROJECTS)
      assert.is_nil(items)
      assert.are.equal(403, err.status)
      assert.are.same({ "org:admin", "org:read", "org:write" }, err.required_scopes)
      assert.are.same({ "org:ci" }, err.token_scopes)
      assert.matches("token has: org:ci", tostring(err), 1, true)
      client:close()
    end)

    it("name the scopes when the token has one of them but the server still refuses", function()
      -- project:read may change only personal fields (Sentry's own rule).
      local client = assert(harness.client { token = tokens.user_read })
      assert(client:whoami())
      local _, err = client:put(PROJECT, { params = { project = "project-001" }, body = { name = "Renamed" } })
      assert.are.equal(403, err.status)
      assert.are.same({ "project:admin", "project:read", "project:write" }, err.required_scopes)
      assert.are.same(READ_SCOPES, err.token_scopes)
      client:close()
    end)
  end)
end)
