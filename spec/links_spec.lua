-- luacheck: std +busted
local links = require "sentry.links"

-- Sentry's Link header for a list of events (FACTS: Pagination).
local SENTRY_HEADER =
  '<https://sentry.io/api/0/organizations/acme/issues/123/events/?&cursor=0:0:1>; '
  .. 'rel="previous"; results="false"; cursor="0:0:1", '
  .. '<https://sentry.io/api/0/organizations/acme/issues/123/events/?&cursor=0:100:0>; '
  .. 'rel="next"; results="true"; cursor="0:100:0"'

describe("sentry.links", function()
  describe("parse", function()
    it("reads Sentry's pagination header", function()
      local parsed = links.parse(SENTRY_HEADER)
      assert.equal("https://sentry.io/api/0/organizations/acme/issues/123/events/?&cursor=0:100:0",
        parsed.next.url)
      assert.equal("0:100:0", parsed.next.cursor)
      assert.is_true(parsed.next.results)
      assert.equal("https://sentry.io/api/0/organizations/acme/issues/123/events/?&cursor=0:0:1",
        parsed.previous.url)
      assert.equal("0:0:1", parsed.previous.cursor)
      assert.is_false(parsed.previous.results)
    end)

    it("returns only the relations the header has", function()
      local relations = {}
      for relation in pairs(links.parse(SENTRY_HEADER)) do
        relations[#relations + 1] = relation
      end
      table.sort(relations)
      assert.same({ "next", "previous" }, relations)
    end)

    it("keeps every parameter, names lower-cased, in params", function()
      local parsed = links.parse('<https://x/>; rel="next"; Results="true"; cursor="c"; Title="Page 2"')
      assert.same({ rel = "next", results = "true", cursor = "c", title = "Page 2" }, parsed.next.params)
    end)

    it("accepts relations and parameters in any order, with any whitespace", function()
      local parsed = links.parse(
        '  <https://x/?cursor=2:0:0> ;cursor = "2:0:0";  results= "true" ;rel="next"  ,'
        .. '\t<https://x/?cursor=1:0:1>;rel="previous";results="false"  ')
      assert.equal("2:0:0", parsed.next.cursor)
      assert.is_true(parsed.next.results)
      assert.is_false(parsed.previous.results)
      assert.equal("https://x/?cursor=1:0:1", parsed.previous.url)
    end)

    it("treats parameter names and relation types case-insensitively", function()
      local parsed = links.parse('<https://x/>; REL="Next"; RESULTS="TRUE"; Cursor="0:1:0"')
      assert.is_true(parsed.next.results)
      assert.equal("0:1:0", parsed.next.cursor)
    end)

    it("accepts bare values as well as quoted ones", function()
      local parsed = links.parse("<https://x/>; rel=next; results=true; cursor=0:100:0")
      assert.is_true(parsed.next.results)
      assert.equal("0:100:0", parsed.next.cursor)
    end)

    it("reads quoted values holding commas, semicolons and escaped quotes", function()
      local parsed = links.parse(
        '<https://x/2>; title="a, b; \\"c\\" \\\\ d"; rel="next"; cursor="x,y;z", '
        .. '<https://x/0>; rel="previous"')
      assert.equal('a, b; "c" \\ d', parsed.next.params.title)
      assert.equal("x,y;z", parsed.next.cursor)
      assert.equal("https://x/0", parsed.previous.url)
    end)

    it("keeps commas and semicolons inside the URL", function()
      local parsed = links.parse('<https://x/?ids=1,2;3&cursor=9:0:0>; rel="next"')
      assert.equal("https://x/?ids=1,2;3&cursor=9:0:0", parsed.next.url)
      assert.equal("9:0:0", parsed.next.cursor)
    end)

    it("registers a link under each of several relation types", function()
      local parsed = links.parse('<https://x/9>; rel="next last"')
      assert.equal("https://x/9", parsed.next.url)
      assert.equal("https://x/9", parsed.last.url)
    end)

    it("leaves results unknown when absent or neither true nor false", function()
      local parsed = links.parse('<https://x/2>; rel="next", <https://x/0>; rel="previous"; results="maybe"')
      assert.is_nil(parsed.next.results)
      assert.is_nil(parsed.previous.results)
    end)

    it("takes the cursor from the URL's query when the parameter is absent", function()
      local parsed = links.parse('<https://sentry.io/api/0/projects/?per_page=10&cursor=1700%3A100%3A0#top>; '
        .. 'rel="next"; results="true"')
      assert.equal("1700:100:0", parsed.next.cursor)
      parsed = links.parse('<https://x/?&cursor=a%2Bb+c>; rel="next"')
      assert.equal("a+b c", parsed.next.cursor)
      parsed = links.parse('<https://x/?cursorless=1>; rel="next"')
      assert.is_nil(parsed.next.cursor)
    end)

    it("prefers the cursor parameter to the URL's cursor", function()
      local parsed = links.parse('<https://x/?cursor=old>; rel="next"; cursor="new"')
      assert.equal("new", parsed.next.cursor)
    end)

    it("keeps the first link of a relation that appears twice", function()
      local parsed = links.parse('<https://x/first>; rel="next", <https://x/second>; rel="next"')
      assert.equal("https://x/first", parsed.next.url)
    end)

    it("uses a prev link as previous", function()
      local parsed = links.parse('<https://x/0>; rel="prev"; results="false"')
      assert.equal("https://x/0", parsed.previous.url)
      assert.is_false(parsed.previous.results)
    end)

    it("gives an empty table for a blank header and skips links without rel", function()
      assert.same({}, links.parse(""))
      assert.same({}, links.parse("  ,  , "))
      assert.same({}, links.parse('<https://x/>; title="no relation"'))
    end)

    it("returns nil for malformed input", function()
      for _, malformed in ipairs({
        "https://x/; rel=next",
        "<https://x/; rel=next",
        '<https://x/>; rel="next',
        '<https://x/>; rel="next\\',
        '<https://x/> rel="next"',
        '<https://x/>; rel="next" junk',
        '<https://x/>; rel="next"; ="x"',
        '<https://x/>;; rel="next"',
        '<https://x/>; rel=ne"xt"',
        '<https://x/>; rel="next" <https://y/>; rel="previous"',
        '<https://x/>; rel="next", garbage',
      }) do
        assert.is_nil(links.parse(malformed), malformed)
      end
    end)

    it("returns nil for anything but a string", function()
      assert.is_nil(links.parse(nil))
      assert.is_nil(links.parse(42))
      assert.is_nil(links.parse({ SENTRY_HEADER }))
    end)

    it("never raises on random input", function()
      math.randomseed(8288)
      local alphabet = { "<", ">", ";", ",", "=", '"', "\\", " ", "\t", "\n", "%", "?", "&",
        "rel", "next", "results", "true", "cursor", "a", "Z", "0", ":", "/", "\0", "\255" }
      for _ = 1, 3000 do
        local pieces = {}
        for index = 1, math.random(0, 40) do
          pieces[index] = alphabet[math.random(1, #alphabet)]
        end
        local input = table.concat(pieces)
        local ok, result = pcall(links.parse, input)
        assert.is_true(ok, input)
        assert.is_true(result == nil or type(result) == "table", input)
      end
    end)

    it("reads randomly built valid headers, and never raises once they are damaged", function()
      math.randomseed(5988)
      local function pick(list) return list[math.random(1, #list)] end
      local function random_text(characters, max_length)
        local pieces = {}
        for index = 1, math.random(0, max_length) do
          pieces[index] = pick(characters)
        end
        return table.concat(pieces)
      end
      local whitespace = { "", " ", "  ", "\t" }
      local quoted_characters = { "a", "0", ":", ",", ";", " ", "<", ">", "=", '\\"', "\\\\" }
      local bare_characters = { "a", "Z", "0", ":", "-", "." }
      local names = { "rel", "REL", "Results", "cursor", "title", "x-extra" }

      local function random_link()
        local parts = { "<https://x/?" .. random_text({ "a", "=", "&", ",", ";", "%" }, 8) .. ">" }
        for _ = 1, math.random(0, 4) do
          local value
          if math.random(1, 2) == 1 then
            value = '"' .. random_text(quoted_characters, 8) .. '"'
          else
            value = random_text(bare_characters, 6)
          end
          parts[#parts + 1] = pick(whitespace) .. ";" .. pick(whitespace) .. pick(names)
            .. pick(whitespace) .. "=" .. pick(whitespace) .. value
        end
        return table.concat(parts)
      end

      for _ = 1, 2000 do
        local link_values = {}
        for index = 1, math.random(0, 3) do
          link_values[index] = random_link()
        end
        local header = table.concat(link_values, pick(whitespace) .. "," .. pick(whitespace))
        assert.is_table(links.parse(header), header)

        local at = math.random(1, #header + 1)
        local damaged = header:sub(1, at - 1) .. string.char(math.random(0, 255)) .. header:sub(at + 1)
        local ok, result = pcall(links.parse, damaged)
        assert.is_true(ok, damaged)
        assert.is_true(result == nil or type(result) == "table", damaged)
      end
    end)

    it("never raises on Sentry's header cut short or with one byte changed", function()
      math.randomseed(7230)
      for length = 0, #SENTRY_HEADER do
        local ok = pcall(links.parse, SENTRY_HEADER:sub(1, length))
        assert.is_true(ok, SENTRY_HEADER:sub(1, length))
      end
      for _ = 1, 2000 do
        local at = math.random(1, #SENTRY_HEADER)
        local mutated = SENTRY_HEADER:sub(1, at - 1) .. string.char(math.random(0, 255))
          .. SENTRY_HEADER:sub(at + 1)
        local ok, result = pcall(links.parse, mutated)
        assert.is_true(ok, mutated)
        assert.is_true(result == nil or type(result) == "table", mutated)
      end
    end)
  end)

  describe("Sentry's exact form", function()
    it("reads the same as the general syntax (one match on the hot path)", function()
      -- two spaces after each ";" leave the one-match form to the general parser
      local general = links.parse((SENTRY_HEADER:gsub("; ", ";  ")))
      assert.are.same(general, links.parse(SENTRY_HEADER))
      local cased = SENTRY_HEADER:gsub('rel="next"', 'rel="Next"')
      assert.are.same(links.parse((cased:gsub("; ", ";  "))), links.parse(cased))
    end)

    it("leaves repeated relations and prev to the general rules", function()
      local twice = '<https://x/1>; rel="next"; results="true"; cursor="a", '
        .. '<https://x/2>; rel="next"; results="true"; cursor="b"'
      assert.are.equal("https://x/1", links.parse(twice).next.url)
      local prev = '<https://x/1>; rel="prev"; results="false"; cursor="a", '
        .. '<https://x/2>; rel="next"; results="true"; cursor="b"'
      assert.are.equal("https://x/1", links.parse(prev).previous.url)
    end)
  end)

  describe("has_next", function()
    it("is true only when the next link says results=\"true\"", function()
      assert.is_true(links.has_next(links.parse(SENTRY_HEADER)))
      assert.is_false(links.has_next(links.parse(
        '<https://x/1>; rel="next"; results="false"; cursor="0:100:0"')))
      assert.is_false(links.has_next(links.parse('<https://x/1>; rel="next"')))
      assert.is_false(links.has_next(links.parse('<https://x/1>; rel="previous"; results="true"')))
    end)

    it("is false for no links at all", function()
      assert.is_false(links.has_next(nil))
      assert.is_false(links.has_next({}))
      assert.is_false(links.has_next("junk"))
      assert.is_false(links.has_next({ next = { results = "true" } }))
    end)
  end)
end)
