local url = require "sentry.url"

describe("sentry.url", function()
  local defaults = { org = "acme", project = "web" }

  it("fills every placeholder, encoded, and leaves braces that open none", function()
    assert.are.equal("/organizations/acme/projects/", url.fill("/organizations/{org}/projects/", nil, defaults))
    assert.are.equal("/projects/acme/web/keys/a%2Fb%20c/",
      url.fill("/projects/{organization_id_or_slug}/{project_id_or_slug}/keys/{key_id}/", { key_id = "a/b c" },
        defaults))
    assert.are.equal("/issues/4506891234567890/", url.fill("/issues/{issue_id}/", { issue_id = 4506891234567890 }))
    assert.are.equal("/x/{a1/", url.fill("/x/{a{b}/", { a = "0", b = "1" }))
    assert.are.equal("/x/{}/{-}/{org/", url.fill("/x/{}/{-}/{org/", nil, defaults))
    assert.are.equal("acmeacme", url.fill("{org}{org}", nil, defaults))
    assert.are.equal("/plain/", url.fill("/plain/", nil, defaults))
  end)

  it("names the first missing placeholder and how to give it", function()
    local filled, problem = url.fill("/projects/{org}/{project}/{thing}/{other}/", nil, {})
    assert.is_nil(filled)
    assert.are.equal("path needs {org}: pass params = { org = ... } or set org in sentry.new", problem)
    filled, problem = url.fill("/x/{thing}/{other}/", nil, defaults)
    assert.is_nil(filled)
    assert.are.equal("path needs {thing}: pass params = { thing = ... }", problem)
  end)

  it("refuses values that would change the endpoint, before any missing one", function()
    for _, case in ipairs {
      { "a\nb", "params.org contains a line break or NUL byte" },
      { "..", 'params.org is "..", which is not a slug or id' },
      { "", 'params.org is "", which is not a slug or id' },
    } do
      local filled, problem = url.fill("/x/{missing}/{org}/", { org = case[1] }, defaults)
      assert.is_nil(filled)
      assert.matches(case[2], problem, 1, true)
    end
    assert.has_error(function() url.fill("/x/{org}/", { org = {} }) end, "params.org must be a string or a number")
  end)

  it("percent-encodes every byte outside the unreserved set and decodes either case", function()
    local all = {}
    for byte = 0, 255 do all[#all + 1] = string.char(byte) end
    all = table.concat(all)
    local encoded = url.encode(all)
    assert.is_nil(encoded:find("[^%w%-%._~%%]"))
    assert.are.equal(all, url.decode(encoded))
    assert.are.equal(all, url.decode((encoded:gsub("%%%x%x", string.lower))))
    assert.are.equal("a/b/c%zz", url.decode("a%2fb%2Fc%zz"))
    assert.are.equal("a b+", url.decode("a+b%2B", true))
  end)
end)
