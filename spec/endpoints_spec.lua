-- luacheck: std +busted
local endpoints = require "sentry.endpoints"
local scopes = require "sentry.scopes"

local load_source = loadstring or load -- luacheck: compat

local function read_file(path)
  local file = assert(io.open(path, "rb"))
  local text = file:read("*a")
  file:close()
  return text
end

local generator = assert(loadfile("tools/gen_endpoints.lua"))()

-- A buffer with the file-handle `write` method, for generator.main.
local function buffer()
  local chunks = {}
  return {
    write = function(self, ...)
      for index = 1, select("#", ...) do
        chunks[#chunks + 1] = select(index, ...)
      end
      return self
    end,
    text = function() return table.concat(chunks) end,
  }
end

local HEADER = "method\tpath\toperation_id\tany_of_scopes\tpaginated\tdsn_allowed\n"

describe("sentry.endpoints", function()
  describe("match", function()
    it("finds an operation from a path relative to the API root", function()
      local operation = endpoints.match("GET", "/organizations/acme/projects/")
      assert.same({
        operation_id = "listOrganizationProjects",
        method = "GET",
        template = "/api/0/organizations/{organization_id_or_slug}/projects/",
        scopes = { "org:admin", "org:read", "org:write" },
        paginated = true,
        dsn_allowed = false,
        params = { organization_id_or_slug = "acme" },
      }, operation)
    end)

    it("accepts the path with or without leading and trailing slashes", function()
      for _, path in ipairs({
        "/organizations/acme/projects/", "/organizations/acme/projects",
        "organizations/acme/projects/", "organizations/acme/projects",
      }) do
        local operation = endpoints.match("GET", path)
        assert.is_table(operation, path)
        assert.equal("listOrganizationProjects", operation.operation_id, path)
      end
    end)

    it("accepts /api/0/ paths and absolute URLs, ignoring query and fragment", function()
      for _, path in ipairs({
        "/api/0/organizations/acme/issues/123/events/",
        "api/0/organizations/acme/issues/123/events",
        "/organizations/acme/issues/123/events/?full=true#top",
        "https://sentry.io/api/0/organizations/acme/issues/123/events/?&cursor=0:100:0",
        "https://de.sentry.io:443/api/0/organizations/acme/issues/123/events/#x",
        "http://sentry.internal/sentry/api/0/organizations/acme/issues/123/events/",
      }) do
        local operation = endpoints.match("GET", path)
        assert.is_table(operation, path)
        assert.equal("listOrganizationIssueEvents", operation.operation_id, path)
        assert.same({ organization_id_or_slug = "acme", issue_id = "123" }, operation.params)
      end
    end)

    it("treats the method case-insensitively and reports it upper-case", function()
      local operation = endpoints.match("delete", "/projects/acme/web/keys/abc/")
      assert.equal("deleteProjectKey", operation.operation_id)
      assert.equal("DELETE", operation.method)
      assert.same({ "project:admin" }, operation.scopes)
      assert.is_false(operation.paginated)
    end)

    it("tells methods of one path apart", function()
      assert.equal("getOrganization", endpoints.match("GET", "/organizations/acme/").operation_id)
      assert.equal("updateOrganization", endpoints.match("PUT", "/organizations/acme/").operation_id)
      assert.same({ "org:admin", "org:write" }, endpoints.match("PUT", "/organizations/acme/").scopes)
    end)

    it("matches percent-encoded values, %2F included, and decodes them in params", function()
      local operation = endpoints.match("GET",
        "/organizations/acme/releases/my%2Fapp%40v1.0%20beta/commits/")
      assert.equal("listOrganizationReleaseCommits", operation.operation_id)
      assert.equal("my/app@v1.0 beta", operation.params.version)
      assert.equal("/api/0/organizations/{organization_id_or_slug}/releases/{version}/commits/",
        operation.template)
    end)

    it("prefers a literal segment over a placeholder", function()
      -- "snapshots" could also be an {artifact_id}
      local operation = endpoints.match("GET",
        "/organizations/acme/preprodartifacts/snapshots/latest-base/")
      assert.equal("getOrganizationPreprodArtifactSnapshotLatestBase", operation.operation_id)
    end)

    it("backtracks to the placeholder when the literal branch dead-ends", function()
      -- snapshots/latest-base/ has no images/ below it: latest-base is a {snapshot_id}
      local operation = endpoints.match("GET",
        "/organizations/acme/preprodartifacts/snapshots/latest-base/images/logo.png/")
      assert.equal("getOrganizationPreprodArtifactSnapshotImage", operation.operation_id)
      assert.same({
        organization_id_or_slug = "acme", snapshot_id = "latest-base", image_identifier = "logo.png",
      }, operation.params)
    end)

    it("matches templates Sentry writes without a trailing slash", function()
      assert.equal("listOrganizationScimV2Users",
        endpoints.match("GET", "/organizations/acme/scim/v2/Users/").operation_id)
      assert.equal("getOrganizationScimV2User",
        endpoints.match("GET", "/organizations/acme/scim/v2/Users/42").operation_id)
    end)

    it("returns nil and a reason for an unknown path", function()
      local operation, err = endpoints.match("GET", "/organizations/acme/no-such-thing/")
      assert.is_nil(operation)
      assert.equal("no known Sentry API operation at /organizations/acme/no-such-thing/", err)
      assert.is_nil(endpoints.match("GET", "/"))
      assert.is_nil(endpoints.match("GET", ""))
      assert.is_nil(endpoints.match("GET", "/organizations/acme/projects/extra/"))
    end)

    it("returns nil and the known methods for a method the path does not have", function()
      local operation, err = endpoints.match("PATCH", "/organizations/acme/")
      assert.is_nil(operation)
      assert.equal("PATCH is not a known method for /organizations/acme/ (known: GET, PUT)", err)
    end)

    it("does not let an empty segment stand for a placeholder", function()
      assert.is_nil(endpoints.match("GET", "/organizations//projects/"))
      assert.is_nil(endpoints.match("GET", "//organizations/acme/projects/"))
      assert.is_nil(endpoints.match("GET", "/api/0//organizations/acme/projects/"))
    end)

    it("refuses absolute URLs outside an API root", function()
      local operation, err = endpoints.match("GET", "https://sentry.io/organizations/acme/projects/")
      assert.is_nil(operation)
      assert.equal("not a Sentry API URL: https://sentry.io/organizations/acme/projects/", err)
    end)

    it("returns a fresh table each time, so changing one does not change the catalogue", function()
      local first = endpoints.match("GET", "/organizations/acme/")
      first.scopes[1] = "org:ci"
      first.paginated = true
      local second = endpoints.match("GET", "/organizations/acme/")
      assert.same({ "org:admin", "org:read", "org:write" }, second.scopes)
      assert.is_false(second.paginated)
    end)

    it("raises on arguments of the wrong type", function()
      assert.has_error(function() endpoints.match(nil, "/organizations/") end,
        "bad argument #1 to 'match' (string expected, got nil)")
      assert.has_error(function() endpoints.match("GET", 42) end,
        "bad argument #2 to 'match' (string expected, got number)")
    end)
  end)

  describe("the catalogue", function()
    it("holds all of Sentry's 223 public operations, each id once", function()
      local list = endpoints.list()
      assert.equal(223, #list)
      local seen = {}
      for _, operation in ipairs(list) do
        assert.is_nil(seen[operation.operation_id], operation.operation_id)
        seen[operation.operation_id] = true
      end
    end)

    it("names only scopes that sentry.scopes knows", function()
      for _, operation in ipairs(endpoints.list()) do
        for _, scope in ipairs(operation.scopes) do
          assert.is_true(scopes.is_known(scope), operation.operation_id .. ": " .. scope)
        end
      end
    end)

    it("finds every operation again from a request path built from its template", function()
      for _, operation in ipairs(endpoints.list()) do
        local counter = 0
        local path = operation.template:gsub("{[%w_]+}", function()
          counter = counter + 1
          return "value" .. counter
        end)
        local found, err = endpoints.match(operation.method, "https://sentry.io" .. path)
        assert.is_table(found, err)
        assert.equal(operation.operation_id, found.operation_id, path)
      end
    end)

    it("keeps the flags from Sentry's table", function()
      assert.is_true(endpoints.by_operation_id("Submit User Feedback").dsn_allowed)
      assert.same({}, endpoints.by_operation_id("listSeerModels").scopes)
      local paginated = 0
      for _, operation in ipairs(endpoints.list()) do
        if operation.paginated then paginated = paginated + 1 end
      end
      assert.equal(43, paginated)
    end)

    it("looks operations up by operation id", function()
      local operation = endpoints.by_operation_id("listOrganizationReleases")
      assert.equal("GET", operation.method)
      assert.equal("/api/0/organizations/{organization_id_or_slug}/releases/", operation.template)
      assert.is_true(operation.paginated)
      local missing, err = endpoints.by_operation_id("listEverything")
      assert.is_nil(missing)
      assert.equal("unknown operation id: listEverything", err)
    end)
  end)

  describe("new", function()
    local catalogue = endpoints.new({
      { "GET", "/api/0/organizations/{org}/issues/", "listIssues", { "event:read" } },
      { "GET", "/api/0/organizations/{org}/{section}/", "getSection", { "org:read" } },
      { "GET", "/api/0/organizations/{org}/{section}/stats/", "getSectionStats", { "org:read" } },
      { "GET", "/api/0/a/b/c/", "literalAll", {} },
      { "GET", "/api/0/a/{x}/c/d/", "placeholderMiddle", {} },
    })

    it("lets a literal segment win over a placeholder at the same position", function()
      assert.equal("listIssues", catalogue.match("GET", "/organizations/acme/issues/").operation_id)
      assert.equal("getSection", catalogue.match("GET", "/organizations/acme/teams/").operation_id)
    end)

    it("backtracks from a literal branch with no route to the placeholder", function()
      local operation = catalogue.match("GET", "/organizations/acme/issues/stats/")
      assert.equal("getSectionStats", operation.operation_id)
      assert.same({ org = "acme", section = "issues" }, operation.params)
      assert.equal("placeholderMiddle", catalogue.match("GET", "/a/b/c/d/").operation_id)
      assert.equal("literalAll", catalogue.match("GET", "/a/b/c/").operation_id)
    end)

    it("refuses duplicate routes and operation ids", function()
      assert.has_error(function()
        endpoints.new({ { "GET", "/api/0/x/", "one", {} }, { "get", "/api/0/x", "two", {} } })
      end, "endpoint row 2: GET /api/0/x is listed twice")
      assert.has_error(function()
        endpoints.new({ { "GET", "/api/0/x/", "one", {} }, { "PUT", "/api/0/x/", "one", {} } })
      end, "endpoint row 2: duplicate operation id 'one'")
    end)
  end)
end)

describe("tools/gen_endpoints.lua", function()
  it("produced the committed sentry/endpoint_data.lua from tools/endpoints.tsv", function()
    local generated = assert(generator.generate(read_file("tools/endpoints.tsv"), "tools/endpoints.tsv"))
    assert.equal(read_file("lua/sentry/endpoint_data.lua"), generated)
  end)

  it("writes a header saying the file is generated, by what and from which data", function()
    local generated = assert(generator.generate(HEADER ..
      "GET\t/api/0/organizations/\tlistOrganizations\torg:read\tyes\tno\n", "fixture.tsv"))
    local first_line = generated:match("^[^\n]*")
    assert.matches("^%-%- Generated by tools/gen_endpoints%.lua from fixture%.tsv", first_line)
    assert.matches("1 operations", generated)
  end)

  it("writes data that sentry.endpoints can load and match", function()
    local generated = assert(generator.generate(HEADER
      .. "PUT\t/api/0/teams/{org}/{team}/\tupdateTeam\tteam:admin,team:write\tno\tno\n"
      .. "GET\t/api/0/teams/{org}/{team}/members/\tlistTeamMembers\tteam:read\tyes\tno\n"
      .. "POST\t/api/0/feedback/\tSubmit \"Quoted\" Feedback\\\t\tno\tyes\n",
      "fixture.tsv"))
    local catalogue = endpoints.new(assert(load_source(generated, "=fixture"))())
    local update = catalogue.match("put", "/teams/acme/backend/")
    assert.equal("updateTeam", update.operation_id)
    assert.same({ "team:admin", "team:write" }, update.scopes)
    assert.is_false(update.paginated)
    assert.is_true(catalogue.match("GET", "/teams/acme/backend/members").paginated)
    local feedback = catalogue.by_operation_id('Submit "Quoted" Feedback\\')
    assert.same({}, feedback.scopes)
    assert.is_true(feedback.dsn_allowed)
  end)

  it("gives the same output whatever the order of the input lines", function()
    local lines = {
      "GET\t/api/0/b/\topB\t\tno\tno",
      "DELETE\t/api/0/a/\topADelete\tproject:admin\tno\tno",
      "GET\t/api/0/a/\topA\tproject:read\tyes\tno",
      "POST\t/api/0/a/\topAPost\tproject:write\tno\tno",
    }
    local forward = generator.generate(HEADER .. table.concat(lines, "\n") .. "\n", "t.tsv")
    local reversed = {}
    for index = #lines, 1, -1 do
      reversed[#reversed + 1] = lines[index]
    end
    local backward = generator.generate(HEADER .. table.concat(reversed, "\r\n"), "t.tsv")
    assert.equal(forward, backward)
    local data = load_source(forward)()
    assert.same({ "opA", "opAPost", "opADelete", "opB" },
      { data[1][3], data[2][3], data[3][3], data[4][3] })
  end)

  it("refuses bad input with the line number and the problem", function()
    local cases = {
      { "GET\t/api/0/a/\top\tx\tmaybe\tno\n", "t.tsv:2: bad paginated value 'maybe' (expected yes or no)" },
      { "GET\t/api/0/a/\top\tx\tno\n", "t.tsv:2: expected 6 tab-separated fields, got 5" },
      { "FETCH\t/api/0/a/\top\tx\tno\tno\n", "t.tsv:2: unknown method 'FETCH'" },
      { "GET\t/a/\top\tx\tno\tno\n", "t.tsv:2: path '/a/' does not start with /api/0/" },
      { "GET\t/api/0/{a/\top\tx\tno\tno\n", "t.tsv:2: path '/api/0/{a/' has a bad segment '{a'" },
      { "GET\t/api/0/{a}/{a}/\top\tx\tno\tno\n",
        "t.tsv:2: path '/api/0/{a}/{a}/' repeats the placeholder {a}" },
      { "GET\t/api/0/a/\top\torg read\tno\tno\n", "t.tsv:2: bad scope 'org read'" },
      { "GET\t/api/0/a/\top\t\tno\tno\n\nGET\t/api/0/a/\tother\t\tno\tno\n",
        "t.tsv:4: GET /api/0/a/ is already listed on line 2" },
      { "GET\t/api/0/a/\top\t\tno\tno\nPUT\t/api/0/a/\top\t\tno\tno\n",
        "t.tsv:3: operation_id 'op' is already used on line 2" },
    }
    for _, case in ipairs(cases) do
      local source, err = generator.generate(HEADER .. case[1], "t.tsv")
      assert.is_nil(source, case[2])
      assert.equal(case[2], err)
    end
    local source, err = generator.generate("method\tpath\n", "t.tsv")
    assert.is_nil(source)
    assert.matches("^t%.tsv:1: expected the header line", err)
    assert.same({ nil, "t.tsv: no operations" }, { generator.generate(HEADER, "t.tsv") })
  end)

  it("runs as a command: module on stdout, errors on stderr and a failing status", function()
    local stdout, stderr = buffer(), buffer()
    assert.equal(0, generator.main({ "tools/endpoints.tsv" }, stdout, stderr))
    assert.equal(read_file("lua/sentry/endpoint_data.lua"), stdout.text())
    assert.equal("", stderr.text())

    stdout, stderr = buffer(), buffer()
    assert.equal(1, generator.main({ "tools/no-such-table.tsv" }, stdout, stderr))
    assert.equal("", stdout.text())
    assert.matches("^gen_endpoints: tools/no%-such%-table%.tsv", stderr.text())
  end)

  it("does not write the input's directories into the output for an absolute path", function()
    local directory = os.getenv("PWD")
    if not directory or directory:sub(1, 1) ~= "/" then
      pending("needs an absolute working directory in PWD")
      return
    end
    local stdout = buffer()
    assert.equal(0, generator.main({ directory .. "/tools/endpoints.tsv" }, stdout, buffer()))
    assert.is_nil(stdout.text():find(directory, 1, true))
    assert.matches("^%-%- Generated by tools/gen_endpoints%.lua from endpoints%.tsv ", stdout.text())
  end)
end)
