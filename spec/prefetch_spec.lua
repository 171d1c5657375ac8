-- luacheck: std +busted
-- Pagination with `prefetch = true`, against the fake Sentry: the next page is
-- requested while the caller works on this one, and nothing else changes.
local harness = require "harness"

local ITEMS = "/fake/items/"

-- A client that records the URL of every request it sends.
local function recording_client()
  local urls = {}
  local client = assert(harness.client { hooks = { on_request = function(info) urls[#urls + 1] = info.url end } })
  return client, urls
end

describe("pagination with prefetch", function()
  setup(function()
    harness.server()
  end)

  -- Every page of a walk: its item numbers and the next cursor it carried.
  local function walk(opts)
    local client, urls = recording_client()
    local seen = {}
    for page, res in client:pages(ITEMS, opts) do
      local numbers = {}
      for i, item in ipairs(page) do numbers[i] = item.n end
      seen[#seen + 1] = { numbers = numbers, next_cursor = res.links and res.links.next and res.links.next.cursor }
    end
    client:close()
    return seen, urls
  end

  it("returns the same pages, items and cursors, with the same requests", function()
    for _, opts in ipairs {
      { query = { total = 250 }, per_page = 100 },
      { query = { total = 1000 }, per_page = 100, limit = 230 },
      { query = { total = 1000 }, per_page = 50, max_pages = 3, cursor = "0:100:0" },
    } do
      local plain, plain_urls = walk(opts)
      opts.prefetch = true
      local prefetched, prefetched_urls = walk(opts)
      assert.are.same(plain, prefetched)
      assert.are.same(plain_urls, prefetched_urls)
    end
  end)

  it("has asked for page 2 by the time the caller works on page 1", function()
    local client, urls = recording_client()
    local requested_during_page = {}
    for _ in client:pages(ITEMS, { query = { total = 300 }, per_page = 100, prefetch = true }) do
      requested_during_page[#requested_during_page + 1] = #urls
    end
    -- page 3 is the last: nothing is requested after it
    assert.are.same({ 2, 3, 3 }, requested_during_page)
    client:close()
  end)

  it("paginate yields every item once, in order, and stops at limit", function()
    local client = assert(harness.client())
    local numbers = {}
    for item in client:paginate(ITEMS, { query = { total = 1000 }, per_page = 100, limit = 250, prefetch = true }) do
      numbers[#numbers + 1] = item.n
    end
    assert.are.equal(250, #numbers)
    for i, n in ipairs(numbers) do assert.are.equal(i, n) end
    client:close()
  end)

  it("rejects a prefetch that is not a boolean", function()
    local client = assert(harness.client())
    assert.has_error(function() client:pages(ITEMS, { prefetch = "yes" }) end,
      "pages: option 'prefetch' must be a boolean, got string")
    client:close()
  end)
end)
