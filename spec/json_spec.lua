-- Exact JSON on every interpreter: empty arrays, every digit of an id, the
-- content type of string bodies, empty bodies.
local harness = require "harness"
local sentry = require "sentry"
local json = require "sentry.json"

local BIG_ID = 4506891234567890 -- a 16-digit sentry.io project id
local EXACT = {
  { 2 ^ 53, "9007199254740992" }, { BIG_ID, "4506891234567890" }, { -1, "-1" }, { 0, "0" },
  { -BIG_ID, "-4506891234567890" },
}

describe("sentry.json", function()
  it("writes every digit of integers up to 2^53", function()
    for _, case in ipairs(EXACT) do
      assert.are.equal(case[2], json.encode(case[1]))
      assert.are.equal(case[2], json.number(case[1]))
    end
  end)

  it("writes other numbers so they read back the same", function()
    for _, x in ipairs { 0.1, 1 / 3, 1e300, -2.5e-308, 123.456, 2 ^ 60 + 0.0 } do
      assert.are.equal(x, tonumber(json.encode(x)), tostring(x))
    end
    assert.are.equal("0.1", json.encode(0.1))
  end)

  it("refuses NaN and infinities, naming where they are", function()
    for _, x in ipairs { 0 / 0, math.huge, -math.huge } do
      local text, problem = json.encode({ stats = { ratio = x } })
      assert.is_nil(text)
      assert.matches("body.stats.ratio is", problem, 1, true)
      assert.matches("NaN and infinities have no JSON form", problem, 1, true)
    end
  end)

  it("sends marked empty arrays as [] and unmarked empty tables as {}", function()
    assert.are.equal('{"options":{},"projects":[]}', json.encode({ projects = sentry.array(), options = {} }))
    assert.are.equal("[1,2]", json.encode(sentry.array { 1, 2 }))
    assert.are.equal('[[],{}]', json.encode({ json.array(), {} }))
  end)

  it("decodes empty arrays as marked arrays, also nested, and leaves strings alone", function()
    local value = assert(json.decode('{"a":[],"b":{},"c":[ [ ] ,{"d":"[]"}],"e":"x\\"[]"}'))
    assert.is_true(json.is_array(value.a))
    assert.is_false(json.is_array(value.b))
    assert.is_true(json.is_array(value.c[1]))
    assert.are.equal("[]", value.c[2].d)
    assert.are.equal('x"[]', value.e)
    assert.are.equal('{"a":[],"b":{},"c":[[],{"d":"[]"}],"e":"x\\"[]"}', json.encode(value))
  end)

  it("finds empty arrays after escaped backslashes and with any blanks inside", function()
    local value = assert(json.decode('["a\\\\",[\t\r\n ],"\\\\[]",{"k":[ ]}]'))
    assert.are.equal("a\\", value[1])
    assert.is_true(json.is_array(value[2]))
    assert.are.equal("\\[]", value[3])
    assert.is_true(json.is_array(value[4].k))
    assert.are.equal('["a\\\\",[],"\\\\[]",{"k":[]}]', json.encode(value))
    -- a backslash as the last byte leaves the string open: reported, not read past
    assert.is_nil((json.decode('["[]\\')))
  end)

  it("reports invalid text, never raising", function()
    for _, text in ipairs { "[", '{"a":[]', '"unterminated [] string', "[] []" } do
      local value, problem = json.decode(text)
      assert.is_nil(value, text)
      assert.is_string(problem, text)
    end
  end)

  it("refuses values JSON cannot hold, naming where", function()
    local _, problem = json.encode({ hook = { print } })
    assert.matches("body.hook[1]: cannot encode a function", problem, 1, true)
    local cycle = {}
    cycle.self = cycle
    _, problem = json.encode(cycle)
    assert.matches("nested more than 100 levels", problem, 1, true)
  end)
end)

describe("exact JSON against the fake Sentry", function()
  local client
  before_each(function() client = assert(harness.client()) end)
  after_each(function() client:close() end)

  it("GET, change one field, PUT back: empty arrays, empty objects and the id survive", function()
    local res = assert(client:get("/fake/resource/"))
    local resource = res.body
    assert.are.equal(BIG_ID, resource.id)
    resource.name = "renamed"
    local echoed = assert(client:put("/fake/echo/", { body = resource }))
    assert.are.equal('{"environments":[],"id":4506891234567890,"name":"renamed",'
      .. '"nested":{"note":"a [] in a string","refs":[]},"options":{},"projects":[],"ratio":0.1}',
      echoed.body.body)
    assert.are.equal("application/json", echoed.body.headers["content-type"])
  end)

  it("sends every digit in bodies, paths and queries", function()
    for _, case in ipairs(EXACT) do
      local res = assert(client:post("/fake/echo/{id}/", { params = { id = case[1] },
        query = { project = case[1] }, body = { id = case[1] } }))
      assert.are.equal('{"id":' .. case[2] .. "}", res.body.body)
      assert.are.equal("/api/0/fake/echo/" .. case[2] .. "/", res.body.path)
      assert.are.equal(case[2], res.body.args.project)
    end
  end)

  it("refuses NaN and infinities in bodies, paths and queries, sending nothing", function()
    for _, opts in ipairs {
      { body = { ratio = 0 / 0 } }, { params = { id = math.huge } }, { query = { n = -math.huge } },
    } do
      opts.params = opts.params or { id = 1 }
      local res, err = client:post("/fake/echo/{id}/", opts)
      assert.is_nil(res)
      assert.are.equal("invalid", err.kind)
      assert.matches("NaN and infinities", err.detail, 1, true)
    end
  end)

  it("sends a string body as application/json unless the caller names a type", function()
    local res = assert(client:post("/fake/echo/", { body = '{"raw":true}' }))
    assert.are.equal("application/json", res.body.headers["content-type"])
    assert.are.equal('{"raw":true}', res.body.body)
    res = assert(client:post("/fake/echo/", { body = "a,b", headers = { ["Content-Type"] = "text/csv" } }))
    assert.are.equal("text/csv", res.body.headers["content-type"])
  end)

  it("gives res.body == nil for an empty 2xx body (204)", function()
    local res = assert(client:delete("/fake/status/204/"))
    assert.are.equal(204, res.status)
    assert.is_nil(res.body)
  end)
end)
