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

  it("decodes escapes, surrogate pairs, literals and numbers exactly", function()
    assert.are.equal('a"\\/\b\f\n\r\t\195\169\240\159\152\128',
      json.decode('"a\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\\ud83d\\ude00"'))
    local value = json.decode('[true,false,null,0,-0,1E5,0.1,-2.5e-3,4506891234567890,'
      .. '9007199254740993,1.7976931348623157e308,5e-324,123456789012345678901234567890]')
    assert.are.same({ true, false, json.null }, { value[1], value[2], value[3] })
    assert.are.equal(-math.huge, 1 / value[5]) -- -0 keeps its sign
    assert.are.equal(13, #value)
    for i, expected in ipairs { 0, 0, 1e5, 0.1, -2.5e-3, BIG_ID, 2 ^ 53, 1.7976931348623157e308, 5e-324,
      1.2345678901234568e29 } do
      if i ~= 2 then assert.are.equal(expected, value[i + 3], "item " .. (i + 3)) end
    end
    -- of a repeated key, the last value wins
    assert.are.equal(2, json.decode('{"a":1,"a":2}').a)
    -- JSON has no length limit on numbers: 1000 digits read as strtod reads them
    local long = "0." .. string.rep("0", 998) .. "1e1000"
    assert.are.equal(tonumber(long), json.decode("[" .. long .. "]")[1])
    assert.are.equal(1e300, json.decode("1" .. string.rep("0", 300)))
  end)

  it("says what is wrong and where, for each kind of bad text", function()
    for text, expected in pairs {
      ['"\\ud83d"'] = "a \\u escape holds a high surrogate without its low surrogate at character 8",
      ['"\\ude00"'] = "a \\u escape holds a lone low surrogate at character 8",
      ['"\\x"'] = "invalid escape in a string at character 3",
      ['"abc'] = "a string is not terminated at character 5",
      ["01"] = "unexpected text after the JSON value at character 2",
      ["1."] = "invalid number at character 3",
      ["[1,]"] = "expected a value at character 4",
      ["[1 2]"] = "expected ',' or ']' after an array item at character 4",
      ['{"a" 1}'] = "expected ':' after an object key at character 6",
      ['{"a":1,}'] = "expected a string as an object key at character 8",
      ["["] = "expected a value, found the end of the text at character 2",
      [("["):rep(1001) .. ("]"):rep(1001)] = "nested more than 1000 levels deep at character 1001",
    } do
      local value, problem = json.decode(text)
      assert.is_nil(value, text)
      assert.are.equal(expected, problem, text)
    end
    assert.is_table(json.decode(("["):rep(1000) .. ("]"):rep(1000)))
  end)

  it("decodes long lists and deep documents with many items on every level", function()
    local parts = {}
    for i = 1, 100000 do parts[i] = tostring(i) end
    local list = json.decode("[" .. table.concat(parts, ",") .. "]")
    assert.are.same({ 100000, 1, 77777, 100000 }, { #list, list[1], list[77777], list[100000] })
    -- 500 levels of 300 items each: more than the stack of a C function holds on Lua 5.1
    -- (keys with escapes: their buffers need stack slots too)
    parts = {}
    for level = 1, 500 do parts[level] = "[" .. ("1,"):rep(299) .. '{"k\\n' .. level .. '":2,"next":' end
    local value = assert(json.decode(table.concat(parts) .. "0" .. ("}]"):rep(500)))
    local levels = 0
    while type(value) == "table" do
      levels = levels + 1
      assert.are.equal(300, #value)
      assert.are.equal(2, value[300]["k\n" .. levels])
      value = value[300].next
    end
    assert.are.equal(500, levels)
  end)

  it("gives every object its own keys, however many keys of one shape came before", function()
    -- keys of one length sharing first, middle and last byte compete for the
    -- decoder's remembered keys; a collection between decodes frees any it lets go
    local keys = {}
    for i = 0, 999 do keys[#keys + 1] = string.format("a%03d%sa", i, ("x"):rep(i % 7)) end
    for round = 1, 3 do
      local parts = {}
      for i, key in ipairs(keys) do parts[i] = string.format('{"%s":%d,"%s":"%s"}', key, i, key .. "!", key) end
      local list = assert(json.decode("[" .. table.concat(parts, ",") .. "]"))
      for i, key in ipairs(keys) do
        local item = list[i]
        assert.are.same({ [key] = i, [key .. "!"] = key }, item, "round " .. round .. ", key " .. key)
      end
      collectgarbage()
      collectgarbage()
    end
    assert.are.same({ [("k"):rep(41)] = 1, [""] = 2 }, json.decode('{"' .. ("k"):rep(41) .. '":1,"":2}'))
  end)

  it("reads back what it writes, and never raises on damaged text", function()
    local cjson = require("cjson.safe")
    math.randomseed(19)
    local function random_string()
      local chars = {}
      for i = 1, math.random(0, 10) do
        chars[i] = ({ "\\", '"', "\195\169", string.char(math.random(0, 31)), "a", "z", "[]" })[math.random(1, 7)]
      end
      return table.concat(chars)
    end
    local function random_value(depth)
      local kind = math.random(1, depth > 4 and 4 or 6)
      if kind == 1 then return random_string() end
      if kind == 2 then
        return ({ math.random(-1e9, 1e9), math.random() * 10 ^ math.random(-30, 30), 2 ^ 53 })[math.random(1, 3)]
      end
      if kind == 3 then return math.random() < 0.5 end
      if kind == 4 then return json.null end
      local t = kind == 5 and json.array() or {}
      for i = 1, math.random(0, 5) do
        if kind == 5 then t[i] = random_value(depth + 1) else t[random_string()] = random_value(depth + 1) end
      end
      return t
    end
    for _ = 1, 500 do
      local text = assert(json.encode(random_value(1)))
      local value = json.decode(text)
      assert.are.equal(text, json.encode(value)) -- empty arrays included
      assert.are.same(cjson.decode(text), (json.decode(text)))
      for _ = 1, 4 do
        local at = math.random(1, #text)
        local damaged = text:sub(1, at - 1) .. string.char(math.random(0, 255)) .. text:sub(at + 1)
        local ok, result, problem = pcall(json.decode, damaged)
        assert.is_true(ok, damaged)
        assert.is_true(result ~= nil or type(problem) == "string", damaged)
        ok = pcall(json.decode, text:sub(1, at))
        assert.is_true(ok)
      end
    end
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
