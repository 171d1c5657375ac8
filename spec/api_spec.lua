-- luacheck: std +busted
-- Operations by name (client.api.<name>): the schema's checks before sending,
-- the defaults for the organization and project, and real requests and walks
-- against the fake Sentry.
local harness = require "harness"
local sentry = require "sentry"
local fake = harness.fake

local PROJECTS_PATH = "/api/0/organizations/acme/projects/"

-- Every request the fake Sentry has counted since the last reset.
local function requests_sent()
  return fake.stats().requests
end

-- Calls fn and checks that it fails with kind "invalid" and that nothing
-- reached the server; returns the message.
local function refused_offline(fn)
  local before = requests_sent()
  local res, err = fn()
  assert.is_nil(res)
  assert.is_table(err, "expected an error object")
  assert.equal("invalid", err.kind, tostring(err))
  assert.equal(before, requests_sent(), "a refused call must send nothing")
  return tostring(err)
end

local function assert_contains(text, expected)
  assert(text:find(expected, 1, true), ("expected %q in: %s"):format(expected, text))
end

describe("sentry.api", function()
  local client

  setup(function()
    harness.server()
    client = assert(harness.client())
  end)

  teardown(function()
    if client then client:close() end
  end)

  describe("describe", function()
    it("gives method, path, scopes, parameters, summary and docs link", function()
      local info = assert(sentry.api.describe("listOrganizationProjects"))
      assert.equal("GET", info.method)
      assert.equal("/api/0/organizations/{organization_id_or_slug}/projects/", info.path)
      assert.same({ "org:admin", "org:read", "org:write" }, info.scopes)
      assert.is_true(info.paginated)
      assert.equal("List an Organization's Projects", info.summary)
      assert.equal("https://docs.sentry.io/api/organizations/list-an-organizations-projects/", info.docs)
      local first = info.parameters[1]
      assert.same({ "organization_id_or_slug", "path", true, "string" },
        { first.name, first["in"], first.required, first.type })
    end)

    it("knows all 223 operations, by Lua name and by Sentry's sentence-like operationIds", function()
      local names = sentry.api.list()
      assert.equal(223, #names)
      local info = assert(sentry.api.describe("List a Project's Issues"))
      assert.equal("listAProjectsIssues", info.name)
      assert.equal("List a Project's Issues", info.operation_id)
      assert.equal(info.path, sentry.api.describe("listAProjectsIssues").path)
    end)

    it("answers an unknown name with the closest one", function()
      local info, err = sentry.api.describe("listOrganisationProjects")
      assert.is_nil(info)
      assert.equal("invalid", err.kind)
      assert_contains(tostring(err), "unknown operation 'listOrganisationProjects' (did you mean 'listOrganizationProjects'?)")
      local _, by_words = sentry.api.describe("updateIssue")
      assert_contains(tostring(by_words), "did you mean 'updateOrganizationIssue'?")
    end)

    it("hands out copies: changing one changes nothing later", function()
      local info = assert(sentry.api.describe("updateOrganizationIssue"))
      info.body.properties.status.enum[1] = "changed"
      info.scopes[1] = "changed"
      local again = assert(sentry.api.describe("updateOrganizationIssue"))
      assert.equal("resolved", again.body.properties.status.enum[1])
      assert.not_equal("changed", again.scopes[1])
    end)
  end)

  describe("checks before sending", function()
    it("refuses a missing required body field", function()
      local message = refused_offline(function()
        return client.api.createOrganizationRelease { body = { projects = { "web" } } }
      end)
      assert_contains(message, "createOrganizationRelease: body.version: missing (required)")
    end)

    it("refuses an empty plain table where the schema wants an array, and says what to write", function()
      local message = refused_offline(function()
        return client.api.createOrganizationRelease { body = { version = "1.0", projects = {} } }
      end)
      assert_contains(message, "body.projects: expected an array, got an object (an empty table is an object: "
        .. "write sentry.array {})")
    end)

    it("refuses a wrong type in a body, a nested field, a path and a query", function()
      assert_contains(refused_offline(function()
        return client.api.updateOrganizationIssue { issue_id = "1", body = { isBookmarked = "yes" } }
      end), "body.isBookmarked: expected a boolean, got a string")
      assert_contains(refused_offline(function()
        return client.api.createOrganizationRelease {
          body = { version = "1", projects = sentry.array { "web" }, commits = { { id = 7 } } } }
      end), "body.commits[1].id: expected a string, got an integer")
      assert_contains(refused_offline(function()
        return client.api.getOrganizationIssue { issue_id = { 1 } }
      end), "issue_id: expected a string, got an array")
      assert_contains(refused_offline(function()
        return client.api.listOrganizationProjects { query = { per_page = "many" } }
      end), "query.per_page: expected an integer, got a string")
    end)

    it("refuses a value outside the enum and suggests the closest", function()
      assert_contains(refused_offline(function()
        return client.api.updateOrganizationIssue { issue_id = "1", body = { status = "resolvd" } }
      end), 'body.status: "resolvd" is not one of "resolved", "unresolved", "ignored", '
        .. '"resolvedInNextRelease", "muted" (did you mean "resolved"?)')
    end)

    it("refuses unknown names with the closest valid one", function()
      assert_contains(refused_offline(function()
        return client.api.updateOrganizationIssue { issue_id = "1", body = { stauts = "resolved" } }
      end), "body.stauts: unknown field (did you mean 'body.status'?)")
      assert_contains(refused_offline(function()
        return client.api.listOrganizationIssues { query = { limt = 5 } }
      end), "query.limt: unknown query parameter (did you mean 'query.limit'?)")
      assert_contains(refused_offline(function()
        return client.api.getOrganizationIssue { isue_id = "1" }
      end), "unknown argument 'isue_id' (did you mean 'issue_id'?)")
      assert_contains(refused_offline(function()
        return client.api.listOrganizationIssues { query = { statsPeriod = "24h" }, limit = 5 }
      end), "limit is a query parameter: pass query = { limit = ... }")
      assert_contains(refused_offline(function()
        return client.api.updateOrganizatonIssue { issue_id = "1" }
      end), "unknown operation 'updateOrganizatonIssue' (did you mean 'updateOrganizationIssue'?)")
    end)

    it("refuses a missing path parameter and a missing required query parameter", function()
      assert_contains(refused_offline(function() return client.api.getOrganizationIssue {} end),
        "issue_id: missing path parameter (pass issue_id = ...)")
      assert_contains(refused_offline(function()
        return client.api.getOrganizationStatsSummary {}
      end), "query.field: missing (required)")
    end)

    it("refuses a body for an operation that takes none", function()
      assert_contains(refused_offline(function()
        return client.api.getOrganizationIssue { issue_id = "1", body = { status = "resolved" } }
      end), "body: this operation takes no body")
    end)

    it("accepts either case style of a body field, as Sentry's serializers do", function()
      local ok, err = pcall(function()
        return client.api.createOrganizationDashboard {
          body = { title = "t", widgets = sentry.array { { displayType = "line", widget_type = "discover" } } } }
      end)
      assert.is_true(ok, err)
      assert_contains(refused_offline(function()
        return client.api.createOrganizationDashboard {
          body = { title = "t", widgets = sentry.array { { displayType = "pie" } } } }
      end), 'body.widgets[1].displayType: "pie" is not one of')
    end)

    it("raises, as Lua's libraries do, for arguments that are not a table", function()
      local ok, message = pcall(function() client.api.getOrganization("acme") end)
      assert.is_false(ok)
      assert.matches("api_spec%.lua:%d+: bad argument to 'getOrganization' %(arguments must be a table, got string%)",
        message)
      ok, message = pcall(function() client.api.listOrganizationProjects:each(5) end)
      assert.is_false(ok)
      assert.matches("api_spec%.lua:%d+: bad argument to 'listOrganizationProjects'", message)
    end)

    it("refuses :each on an operation that is not paginated, raising the error object", function()
      local ok, err = pcall(function() return client.api.getOrganizationIssue:each { issue_id = "1" } end)
      assert.is_false(ok)
      assert.equal("invalid", err.kind)
      assert_contains(tostring(err), "getOrganizationIssue: this operation is not paginated")
    end)
  end)

  describe("against the fake Sentry", function()
    before_each(function() fake.reset() end)

    it("fills organization_id_or_slug from the client's org", function()
      local res = assert(client.api.getOrganization {})
      assert.equal(200, res.status)
      assert.equal("acme", res.body.slug)
    end)

    it("takes an explicit organization and project over the client's defaults", function()
      local with_project = assert(harness.client { project = "project-001" })
      local res = assert(with_project.api.getProject {})
      assert.equal("project-001", res.body.slug)
      res = assert(with_project.api.getProject { project_id_or_slug = "project-002" })
      assert.equal("project-002", res.body.slug)
      local err
      res, err = with_project.api.getProject { organization_id_or_slug = "no-such-org" }
      assert.is_nil(res)
      assert.equal("not_found", err.kind)
      with_project:close()
    end)

    it("says how to name the organization when the client has none", function()
      local no_org = assert(harness.client { org = harness.NONE })
      assert_contains(refused_offline(function() return no_org.api.getOrganization {} end),
        "organization_id_or_slug: missing path parameter (pass organization_id_or_slug = ... or set org in sentry.new)")
      no_org:close()
    end)

    it("sends a checked body and returns the response like client:request", function()
      local res = assert(client.api.updateProject {
        project_id_or_slug = "project-003", body = { name = "Renamed by operation" } })
      assert.equal(200, res.status)
      assert.equal("Renamed by operation", res.body.name)
    end)

    it("iterates a paginated operation like client:paginate: every item, once, in order", function()
      local slugs = {}
      for project in client.api.listOrganizationProjects:each { query = { per_page = 100 } } do
        slugs[#slugs + 1] = project.slug
      end
      assert.equal(250, #slugs)
      assert.equal("project-001", slugs[1])
      assert.equal("project-250", slugs[250])
      assert.equal(3, fake.stats().by_path[PROJECTS_PATH])
    end)

    it("stops at limit and max_pages, and resumes from a cursor", function()
      local items, err, state = client.api.listOrganizationProjects:collect { limit = 120 }
      assert.is_nil(err)
      assert.equal(120, #items)
      assert.equal("project-120", items[120].slug)
      local rest = assert(client.api.listOrganizationProjects:collect { cursor = state.cursor, max_pages = 1 })
      assert.equal("project-121", rest[1].slug)
      local pages = 0
      for _ in client.api.listOrganizationProjects:pages { per_page = 10, max_pages = 2 } do pages = pages + 1 end
      assert.equal(2, pages)
    end)

    it("raises the error object when a walk's arguments are wrong, before any request", function()
      local before = requests_sent()
      local ok, err = pcall(function()
        for _ in client.api.listOrganizationProjects:each { query = { per_page = "all" } } do end
      end)
      assert.is_false(ok)
      assert.equal("invalid", err.kind)
      assert_contains(tostring(err), "query.per_page: expected an integer")
      assert.equal(before, requests_sent())
    end)

    it("uses the operation's scopes: check_scopes refuses, a 403 names them", function()
      local reader = assert(harness.client { token = harness.tokens.user_read, check_scopes = true })
      local res, err = reader.api.deleteProject { project_id_or_slug = "project-004" }
      assert.is_nil(res)
      assert.equal("scope", err.kind)
      assert.same({ "project:admin" }, err.required_scopes)
      reader:close()
      local unchecked = assert(harness.client { token = harness.tokens.user_read })
      res, err = unchecked.api.deleteProject { project_id_or_slug = "project-004" }
      assert.is_nil(res)
      assert.equal("forbidden", err.kind)
      assert.same({ "project:admin" }, err.required_scopes)
      unchecked:close()
    end)

    it("sends without checking when validate = false (the server decides)", function()
      local res, err = client.api.updateProject {
        project_id_or_slug = "project-005", body = { name = 42 }, validate = false }
      assert.is_nil(res)
      assert.equal(400, err.status)
    end)
  end)
end)
