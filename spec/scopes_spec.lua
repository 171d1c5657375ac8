-- luacheck: std +busted
local scopes = require "sentry.scopes"

describe("sentry.scopes", function()
  describe("ALL", function()
    it("lists every scope Sentry knows, sorted, each once", function()
      assert.same({
        "alerts:read", "alerts:write", "email",
        "event:admin", "event:read", "event:write",
        "member:admin", "member:invite", "member:read", "member:write",
        "openid",
        "org:admin", "org:ci", "org:integrations", "org:read", "org:write",
        "profile",
        "project:admin", "project:distribution", "project:read", "project:releases",
        "project:write",
        "team:admin", "team:read", "team:write",
      }, scopes.ALL)
    end)

    it("has a description for every scope", function()
      for _, scope in ipairs(scopes.ALL) do
        local description = scopes.describe(scope)
        assert.is_string(description, scope)
        assert.is_true(#description > 5, scope)
        assert.equal(description, scopes.DESCRIPTIONS[scope])
      end
    end)
  end)

  describe("describe", function()
    it("describes org:read by what it lets a token read", function()
      assert.equal("Read organization data, members, and settings", scopes.describe("org:read"))
    end)

    it("uses the words of Sentry's auth page for its 17 scopes", function()
      local page = {
        ["org:read"] = "Read organization data, members, and settings",
        ["org:write"] = "Modify organization settings and configuration",
        ["org:admin"] = "Full administrative access to the organization",
        ["project:read"] = "Read project data and configuration",
        ["project:write"] = "Create and modify projects",
        ["project:admin"] = "Delete projects and manage project keys",
        ["project:releases"] = "Create and manage releases and deploys",
        ["team:read"] = "Read team membership and settings",
        ["team:write"] = "Create and modify teams",
        ["team:admin"] = "Delete teams",
        ["event:read"] = "Read issues and events",
        ["event:write"] = "Update and resolve issues",
        ["event:admin"] = "Delete issues and events",
        ["member:read"] = "Read organization member data",
        ["member:write"] = "Invite and manage organization members",
        ["alerts:read"] = "Read alert rules",
        ["alerts:write"] = "Create and modify alert rules",
      }
      local count = 0
      for scope, words in pairs(page) do
        assert.equal(words, scopes.describe(scope), scope)
        count = count + 1
      end
      assert.equal(17, count)
      -- the scopes the page leaves out keep a description in its style
      for _, scope in ipairs { "org:integrations", "member:admin", "member:invite", "org:ci" } do
        assert.is_nil(scopes.describe(scope):find("%.$"), scope)
      end
    end)

    it("keeps every description to one short line", function()
      for _, scope in ipairs(scopes.ALL) do
        local description = scopes.describe(scope)
        assert.is_true(#description <= 90, scope)
        assert.is_nil(description:find("\n"), scope)
        assert.is_nil(description:find("%.$"), scope)
      end
    end)

    it("returns nil and an error naming an unknown scope", function()
      local description, err = scopes.describe("org:delete")
      assert.is_nil(description)
      assert.equal("unknown scope: org:delete", err)
    end)

    it("raises on a non-string argument, like Lua's own libraries", function()
      assert.has_error(function() scopes.describe(nil) end,
        "bad argument #1 to 'describe' (string expected, got nil)")
    end)
  end)

  describe("is_known", function()
    it("accepts Sentry's scopes only", function()
      assert.is_true(scopes.is_known("org:ci"))
      assert.is_true(scopes.is_known("openid"))
      assert.is_false(scopes.is_known("org:ci "))
      assert.is_false(scopes.is_known("ORG:READ"))
      assert.is_false(scopes.is_known(nil))
      assert.is_false(scopes.is_known(42))
    end)
  end)

  describe("expand", function()
    it("follows Sentry's hierarchy for admin scopes", function()
      assert.same({ "org:admin", "org:integrations", "org:read", "org:write" },
        scopes.expand({ "org:admin" }))
      assert.same({ "member:admin", "member:invite", "member:read", "member:write" },
        scopes.expand({ "member:admin" }))
      for _, kind in ipairs({ "team", "project", "event" }) do
        assert.same({ kind .. ":admin", kind .. ":read", kind .. ":write" },
          scopes.expand({ kind .. ":admin" }))
      end
    end)

    it("follows Sentry's hierarchy for write and invite scopes", function()
      assert.same({ "org:read", "org:write" }, scopes.expand({ "org:write" }))
      assert.same({ "member:invite", "member:read", "member:write" },
        scopes.expand({ "member:write" }))
      assert.same({ "member:invite", "member:read" }, scopes.expand({ "member:invite" }))
      assert.same({ "alerts:read", "alerts:write" }, scopes.expand({ "alerts:write" }))
    end)

    it("grants nothing beyond themselves for standalone scopes", function()
      for _, scope in ipairs({ "org:ci", "org:integrations", "project:releases",
                               "project:distribution", "org:read", "openid" }) do
        assert.same({ scope }, scopes.expand({ scope }))
      end
    end)

    it("merges several scopes into one sorted list without duplicates", function()
      assert.same({ "event:read", "event:write", "project:read", "project:releases" },
        scopes.expand({ "project:releases", "event:write", "event:read", "project:read" }))
      assert.same({}, scopes.expand({}))
    end)

    it("names every unknown scope instead of ignoring it", function()
      local expanded, err = scopes.expand({ "org:read", "org:own", "admin" })
      assert.is_nil(expanded)
      assert.equal("unknown scopes: admin, org:own", err)
    end)

    it("raises when not given a list", function()
      assert.has_error(function() scopes.expand("org:read") end,
        "bad argument #1 to 'expand' (table expected, got string)")
    end)
  end)

  describe("satisfies", function()
    it("accepts a call when one granted scope is among the candidates", function()
      assert.is_true(scopes.satisfies({ "org:read" }, { "org:admin", "org:read", "org:write" }))
    end)

    it("expands the granted scopes first", function()
      assert.is_true(scopes.satisfies({ "org:admin" }, { "org:integrations" }))
      assert.is_true(scopes.satisfies({ "member:write" }, { "member:invite" }))
      assert.is_true(scopes.satisfies({ "project:admin" }, { "project:read" }))
    end)

    it("does not expand the candidates: a lower scope does not grant a higher one", function()
      local ok, missing = scopes.satisfies({ "org:read" }, { "org:admin", "org:write" })
      assert.is_false(ok)
      assert.same({ "org:admin", "org:write" }, missing)
    end)

    it("lists the missing candidates, sorted and once each", function()
      local ok, missing = scopes.satisfies({ "org:ci" },
        { "project:write", "event:admin", "project:write" })
      assert.is_false(ok)
      assert.same({ "event:admin", "project:write" }, missing)
    end)

    it("refuses everything to a token without scopes", function()
      local ok, missing = scopes.satisfies({}, { "org:read" })
      assert.is_false(ok)
      assert.same({ "org:read" }, missing)
    end)

    it("is satisfied by an empty candidate list", function()
      assert.is_true(scopes.satisfies({}, {}))
      assert.is_true(scopes.satisfies({ "org:read" }, {}))
    end)

    it("returns nil and an error for unknown scope names in either list", function()
      local ok, err = scopes.satisfies({ "org:read", "org:everything" }, { "org:read" })
      assert.is_nil(ok)
      assert.equal("unknown scope: org:everything", err)

      ok, err = scopes.satisfies({ "org:read" }, { "org:read", "org:reed" })
      assert.is_nil(ok)
      assert.equal("unknown scope: org:reed", err)

      ok, err = scopes.satisfies({ "a:b" }, { "c:d" })
      assert.is_nil(ok)
      assert.equal("unknown scopes: a:b, c:d", err)
    end)

    it("raises when an argument is not a list", function()
      assert.has_error(function() scopes.satisfies(nil, {}) end,
        "bad argument #1 to 'satisfies' (table expected, got nil)")
      assert.has_error(function() scopes.satisfies({}, "org:read") end,
        "bad argument #2 to 'satisfies' (table expected, got string)")
    end)
  end)
end)
