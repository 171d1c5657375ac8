-- luacheck: std +busted
-- tools/gen_operations.lua: what it keeps of the schema, the names it gives,
-- and the disagreements with the endpoint catalogue it refuses.
local cjson = require "cjson"
local generator = assert(loadfile("tools/gen_operations.lua"))()
local endpoints_generator = assert(loadfile("tools/gen_endpoints.lua"))()

-- A file handle that collects what is written.
local function sink()
  local parts = {}
  return { write = function(self, ...) for _, part in ipairs { ... } do parts[#parts + 1] = part end return self end,
    text = function() return table.concat(parts) end }
end

local CATALOGUE = table.concat({
  "method\tpath\toperation_id\tany_of_scopes\tpaginated\tdsn_allowed",
  "GET\t/api/0/organizations/{organization_id_or_slug}/things/\tlistThings\torg:read\tyes\tno",
  "POST\t/api/0/organizations/{organization_id_or_slug}/things/\tMake a Thing's Copy\torg:write\tno\tno",
}, "\n")

local function schema_with(post_operation_id)
  return {
    paths = {
      ["/api/0/organizations/{organization_id_or_slug}/things/"] = {
        get = { operationId = "listThings", summary = "List an Organization's Things", tags = { "Things" },
          parameters = { { ["in"] = "path", name = "organization_id_or_slug", required = true,
            schema = { type = "string" } } } },
        post = { operationId = post_operation_id, tags = { "Things" },
          requestBody = { required = true, content = { ["application/json"] = { schema = {
            type = "object", properties = { name = { type = "string" } }, required = { "name" } } } } } },
      },
    },
  }
end

describe("tools/gen_operations.lua", function()
  local catalogue = assert(endpoints_generator.parse(CATALOGUE, "fixture.tsv"))

  it("names operations by operationId, and sentence-like ones in camel case", function()
    assert.equal("listOrganizationProjects", generator.lua_name("listOrganizationProjects"))
    assert.equal("listAProjectsIssues", generator.lua_name("List a Project's Issues"))
    assert.equal("createOrUpdateAnExternalIssue", generator.lua_name("Create or update an External Issue"))
  end)

  it("keeps what checking needs: allOf merged, a listed null as nullable, read-only fields not required", function()
    local node = generator.reduce {
      allOf = {
        { type = "object", properties = { id = { type = "string", readOnly = true } }, required = { "id" } },
        { properties = { status = { type = "string", enum = { "a", "b", cjson.null }, description = "x" } },
          required = { "status" } },
      },
    }
    assert.same({ type = "object", required = { "status" }, properties = {
      id = { type = "string" }, status = { type = "string", enum = { "a", "b" }, nullable = true } } }, node)
  end)

  it("marks objects open when they allow other properties or list none", function()
    assert.is_nil(generator.reduce({ type = "object", properties = { a = { type = "string" } } }).open)
    assert.is_true(generator.reduce({ type = "object", properties = {}, additionalProperties = {} }).open)
    assert.is_true(generator.reduce({ type = "object" }).open)
    assert.same({ type = "array", items = { any_of = { { type = "integer" }, { type = "string" } } } },
      generator.reduce { type = "array", items = { anyOf = { { type = "integer" }, { type = "string" } } } })
  end)

  it("writes parameters, bodies, summaries and docs links, keeping Sentry's id where the name differs", function()
    local entries, names = assert(generator.collect(schema_with("Make a Thing's Copy"), catalogue))
    assert.same({ "listThings", "makeAThingsCopy" }, names)
    assert.equal("https://docs.sentry.io/api/things/list-an-organizations-things/", entries.listThings.docs)
    assert.same({ "path", "organization_id_or_slug", required = true, type = "string" }, entries.listThings.params[1])
    assert.equal("Make a Thing's Copy", entries.makeAThingsCopy.operation_id)
    assert.is_true(entries.makeAThingsCopy.body_required)
    local source = generator.render_data(entries, names, "fixture.json")
    local data = assert((loadstring or load)(source))()
    assert.same({ "name" }, data.makeAThingsCopy.body.required)
    local reference = generator.render_reference(entries, names, catalogue, "fixture.json")
    assert.truthy(reference:find("| [listThings](https://docs.sentry.io/api/things/list-an-organizations-things/) "
      .. "| GET | `/api/0/organizations/{organization_id_or_slug}/things/` | `org:read` | yes |", 1, true))
  end)

  it("refuses a schema that disagrees with the endpoint catalogue", function()
    local entries, problem = generator.collect(schema_with("copyThing"), catalogue)
    assert.is_nil(entries)
    assert.matches("copyThing %(POST /api/0/organizations/{organization_id_or_slug}/things/%) is not in "
      .. "tools/endpoints.tsv", problem)
    local schema = schema_with("Make a Thing's Copy")
    schema.paths["/api/0/organizations/{organization_id_or_slug}/things/"].post = nil
    entries, problem = generator.collect(schema, catalogue)
    assert.is_nil(entries)
    assert.matches("the schema has 1 operations, tools/endpoints.tsv 2", problem)
  end)

  it("wrote the committed data module and reference from the vendored schema", function()
    for mode, path in pairs { data = "lua/sentry/operation_data.lua", reference = "OPERATIONS.md" } do
      local stdout, stderr = sink(), sink()
      assert.equal(0, generator.main({ mode }, stdout, stderr), stderr.text())
      local committed = assert(io.open(path, "rb"))
      assert.equal(committed:read("*a"), stdout.text(), path .. " is stale: run make operations")
      committed:close()
    end
  end)

  it("says how to call it when the mode is wrong", function()
    local stdout, stderr = sink(), sink()
    assert.equal(1, generator.main({ "everything" }, stdout, stderr))
    assert.matches("^usage: lua tools/gen_operations.lua data|reference", stderr.text())
  end)
end)
