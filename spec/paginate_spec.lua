-- luacheck: std +busted
-- Pagination against the fake Sentry, which pages exactly like Sentry: cursors
-- "0:<offset>:0", a Link header with both relations, per_page capped at 100.
local harness = require "harness"
local links = require "sentry.links"
local core = require "sentry.core"
local paginate = require "sentry.paginate"
local url = require "sentry.url"
local fake = harness.fake

local PROJECTS = "/organizations/{org}/projects/"
local PROJECTS_PATH = "/api/0/organizations/acme/projects/"
local ITEMS = "/fake/items/"

-- A client that records the URL of every request it sends.
local function recording_client(overrides)
  local urls = {}
  overrides = overrides or {}
  overrides.hooks = { on_request = function(info) urls[#urls + 1] = info.url end }
  return assert(harness.client(overrides)), urls
end

local function requests_to(path)
  return fake.stats().by_path[path] or 0
end

-- A query parameter of a URL, percent-decoded.
local function query_value(target, name)
  local raw = target:match("[?&]" .. name .. "=([^&]*)")
  return raw and url.decode(raw)
end

local function slugs(projects)
  local list = {}
  for i, project in ipairs(projects) do list[i] = project.slug end
  return list
end

local function project_slugs(first, last)
  local list = {}
  for i = first, last do list[#list + 1] = string.format("project-%03d", i) end
  return list
end

-- The item numbers 1..n, each exactly once and in order?
local function assert_items_in_order(items, first, last)
  assert.are.equal(last - first + 1, #items)
  for i, item in ipairs(items) do
    if item.n ~= first + i - 1 then
      error(string.format("item %d is n=%s, expected %d", i, tostring(item.n), first + i - 1), 2)
    end
  end
end

describe("pagination", function()
  local client

  setup(function()
    harness.server()
  end)

  before_each(function()
    client = assert(harness.client())
    fake.reset()
  end)

  after_each(function()
    client:close()
  end)

  describe("pages", function()
    it("walks 250 projects in 3 requests of up to 100", function()
      local sizes, all = {}, {}
      for page, res in client:pages(PROJECTS, { per_page = 100 }) do
        assert.are.equal(200, res.status)
        sizes[#sizes + 1] = #page
        for _, project in ipairs(page) do all[#all + 1] = project end
      end
      assert.are.same({ 100, 100, 50 }, sizes)
      assert.are.same(project_slugs(1, 250), slugs(all))
      assert.are.equal(3, requests_to(PROJECTS_PATH))
    end)

    it("follows the next link's URL, so the server-side query stays intact", function()
      local recorder, urls = recording_client()
      local items = assert(recorder:collect(ITEMS, { query = { total = 250 } }))
      assert_items_in_order(items, 1, 250)
      assert.are.equal(3, #urls)
      for _, target in ipairs(urls) do assert.are.equal("250", query_value(target, "total")) end
      assert.is_nil(query_value(urls[1], "cursor"))
      assert.are.equal("0:100:0", query_value(urls[2], "cursor"))
      assert.are.equal("0:200:0", query_value(urls[3], "cursor"))
      recorder:close()
    end)

    it("sends the caller's headers and timeout with every page", function()
      local seen = {}
      local c = assert(harness.client { hooks = { on_request = function(info)
        seen[#seen + 1] = info.headers["X-Trace"]
      end } })
      local items = assert(c:collect(ITEMS, { query = { total = 30 }, per_page = 10,
        headers = { ["X-Trace"] = "walk-1" }, timeout = 5 }))
      assert.are.equal(30, #items)
      assert.are.same({ "walk-1", "walk-1", "walk-1" }, seen)
      c:close()
    end)

    it("sends each page through client:request, so rate-limit state is kept", function()
      -- budgets are per token and process: a token no other spec uses
      local fresh = assert(harness.client { token = harness.tokens.own_budget })
      assert.is_nil(fresh:rate_limit("GET", PROJECTS))
      local pages, last = 0, nil
      for _, res in fresh:pages(PROJECTS) do pages, last = pages + 1, res.rate_limit end
      assert.are.equal(3, pages)
      local limits = fresh:rate_limit("GET", PROJECTS)
      assert.is_table(limits)
      assert.are.equal(1000, limits.limit)
      -- what the last page's response said (3 below the limit, or fewer when
      -- a slow run crossed the fake's 10 s window between pages)
      assert.are.equal(last.remaining, limits.remaining)
      assert.is_true(limits.remaining >= limits.limit - 3 and limits.remaining < limits.limit)
      fresh:close()
    end)
  end)

  describe("paginate", function()
    it("yields the items one at a time, in order, each once", function()
      local seen, count = {}, 0
      for project in client:paginate(PROJECTS) do
        count = count + 1
        assert.are.equal(string.format("project-%03d", count), project.slug)
        assert.is_nil(seen[project.slug])
        seen[project.slug] = true
      end
      assert.are.equal(250, count)
      assert.are.equal(3, requests_to(PROJECTS_PATH))
    end)

    it("keeps answering nil once the list has ended", function()
      local next_item = client:paginate("/organizations/empty/projects/")
      assert.is_nil(next_item())
      assert.is_nil(next_item())
      assert.are.equal(1, requests_to("/api/0/organizations/empty/projects/"))
    end)
  end)

  describe("limit", function()
    it("returns exactly 150 of 250 items in 2 requests, the second asking for only 50", function()
      local recorder, urls = recording_client()
      local items, err, state = recorder:collect(PROJECTS, { per_page = 100, limit = 150 })
      assert.is_nil(err)
      assert.are.same(project_slugs(1, 150), slugs(items))
      assert.are.equal(2, requests_to(PROJECTS_PATH))
      assert.are.equal("100", query_value(urls[1], "per_page"))
      assert.are.equal("50", query_value(urls[2], "per_page"))
      assert.are.equal("0:150:0", state.cursor)
      assert.is_false(state.done)
      recorder:close()
    end)

    it("stops after one request when the first page reaches the limit", function()
      local items, _, state = client:collect(PROJECTS, { per_page = 100, limit = 100 })
      assert.are.equal(100, #items)
      assert.are.equal(1, requests_to(PROJECTS_PATH))
      assert.are.equal("0:100:0", state.cursor)
    end)

    it("asks for a smaller first page when the limit is below the server's page size", function()
      local recorder, urls = recording_client()
      local items = assert(recorder:collect(PROJECTS, { limit = 30 }))
      assert.are.same(project_slugs(1, 30), slugs(items))
      assert.are.equal(1, #urls)
      assert.are.equal("30", query_value(urls[1], "per_page"))
      recorder:close()
    end)

    it("never yields more than asked from the iterators either", function()
      local count = 0
      for _ in client:paginate(PROJECTS, { limit = 120 }) do count = count + 1 end
      assert.are.equal(120, count)
      local sizes = {}
      for page in client:pages(PROJECTS, { per_page = 40, limit = 90 }) do sizes[#sizes + 1] = #page end
      assert.are.same({ 40, 40, 10 }, sizes)
    end)

    it("sends no request for a limit of 0", function()
      local items, err, state = client:collect(PROJECTS, { limit = 0, cursor = "0:10:0" })
      assert.are.same({}, items)
      assert.is_nil(err)
      assert.are.equal("0:10:0", state.cursor)
      assert.are.equal(0, requests_to(PROJECTS_PATH))
    end)

    it("resumes from a limit that ended mid-page with no gap and no repeat", function()
      local first, _, state = client:collect(ITEMS, { query = { total = 1000 }, per_page = 100, limit = 250 })
      assert_items_in_order(first, 1, 250)
      local rest, err, final = client:collect(ITEMS, { query = { total = 1000 }, per_page = 100, cursor = state.cursor })
      assert.is_nil(err)
      assert_items_in_order(rest, 251, 1000)
      assert.is_nil(final.cursor)
      assert.is_true(final.done)
    end)
  end)

  describe("max_pages and cursor", function()
    it("stops after max_pages and hands back the cursor to continue", function()
      local items, _, state = client:collect(PROJECTS, { max_pages = 2 })
      assert.are.equal(200, #items)
      assert.are.equal(2, state.pages)
      assert.are.equal(2, requests_to(PROJECTS_PATH))
      local rest = assert(client:collect(PROJECTS, { cursor = state.cursor }))
      assert.are.same(project_slugs(201, 250), slugs(rest))
    end)

    it("starts from a given cursor", function()
      local rest, _, state = client:collect(PROJECTS, { per_page = 25, cursor = "0:200:0" })
      assert.are.same(project_slugs(201, 250), slugs(rest))
      assert.are.equal(2, state.pages)
      assert.is_true(state.done)
    end)

    it("reports the end of the list with a nil cursor", function()
      local items, err, state = client:collect(PROJECTS)
      assert.are.equal(250, #items)
      assert.is_nil(err)
      assert.is_nil(state.cursor)
      assert.is_true(state.done)
      assert.are.equal(3, state.pages)
      assert.are.equal(250, state.count)
    end)
  end)

  describe("an empty list", function()
    it("gives 0 items after 1 request", function()
      local items, err, state = client:collect("/organizations/empty/projects/")
      assert.are.same({}, items)
      assert.is_nil(err)
      assert.is_true(state.done)
      assert.are.equal(1, requests_to("/api/0/organizations/empty/projects/"))
      local pages = 0
      for page in client:pages("/organizations/empty/projects/") do
        pages = pages + 1
        assert.are.same({}, page)
      end
      assert.are.equal(1, pages)
    end)
  end)

  describe("errors", function()
    it("returns the 400 for per_page above 100 from collect", function()
      local items, err, state = client:collect(PROJECTS, { per_page = 101 })
      assert.is_nil(items)
      assert.are.equal("http", err.kind)
      assert.are.equal(400, err.status)
      assert.are.equal("Invalid per_page value. Cannot exceed 100.", err.detail)
      assert.are.equal(0, state.count)
      assert.is_nil(state.cursor)
    end)

    it("raises the error object from the iterators; tostring describes it", function()
      for _, method in ipairs { "pages", "paginate" } do
        local ok, err = pcall(function()
          for _ in client[method](client, PROJECTS, { per_page = 101 }) do end
        end)
        assert.is_false(ok)
        assert.is_table(err)
        assert.are.equal(400, err.status)
        assert.matches("400 bad request: Invalid per_page value. Cannot exceed 100.", tostring(err), 1, true)
      end
    end)

    it("raises the same error again if the iterator is called after failing", function()
      local next_page = client:pages(PROJECTS, { per_page = 500 })
      local _, first = pcall(next_page)
      local _, second = pcall(next_page)
      assert.are.equal(first, second)
      assert.are.equal(1, requests_to(PROJECTS_PATH))
    end)

    it("refuses a 2xx body that is not a list, with kind decode", function()
      local items, err = client:collect("/fake/echo/not-a-list/")
      assert.is_nil(items)
      assert.are.equal("decode", err.kind)
      assert.are.equal(200, err.status)
      assert.matches("did not return a list", tostring(err), 1, true)
      local ok, raised = pcall(function() for _ in client:paginate("/fake/echo/x/") do end end)
      assert.is_false(ok)
      assert.are.equal("decode", raised.kind)
    end)

    it("never raises from collect for run-time failures", function()
      local unreachable = assert(harness.client { base_url = "http://127.0.0.1:1", max_retries = 0 })
      local cases = {
        { client, "/organizations/no-such-org/projects/", "not_found" },
        { client, PROJECTS, "http", { per_page = 1000 } },
        { client, "/fake/text/", "decode" },
        { client, "/fake/invalid-json/", "decode" },
        { client, "/fake/status/500/", "http" },
        { assert(harness.client { token = harness.tokens.unknown_to_server }), PROJECTS, "unauthorized" },
        { unreachable, PROJECTS, "network" },
      }
      for _, case in ipairs(cases) do
        local ok, items, err, state = pcall(case[1].collect, case[1], case[2], case[4])
        assert.is_true(ok, tostring(items))
        assert.is_nil(items)
        assert.are.equal(case[3], err.kind, case[2])
        assert.is_table(state)
      end
    end)

    it("raises at once on options of the wrong type, as Lua's libraries do", function()
      assert.has_error(function() client:collect(PROJECTS, { per_page = "10" }) end,
        "collect: option 'per_page' must be a number, got string")
      assert.has_error(function() client:pages(PROJECTS, { perPage = 10 }) end,
        "pages: unknown option 'perPage'")
      assert.has_error(function() client:paginate(PROJECTS, { limit = -1 }) end,
        "paginate: option 'limit' must be a whole number of at least 0")
      assert.has_error(function() client:collect(42) end,
        "bad argument #1 to 'collect' (path must be a string)")
      assert.are.equal(0, requests_to(PROJECTS_PATH))
    end)
  end)

  describe("resuming after a failure mid-walk", function()
    -- Pages of /fake/items/ grow with the item numbers: items 1..1000 fit in
    -- 2200 bytes a page, items 1001.. do not. A client that accepts no larger
    -- body fails for real on page 11 (libcurl stops the transfer); a client
    -- with the default limit then resumes from the cursor it was given.
    local SMALL_BODY = 2200

    it("continues from state.cursor with no gap and no duplicate", function()
      local small = assert(harness.client { max_body_bytes = SMALL_BODY, max_retries = 0 })
      local items, err, state = small:collect(ITEMS, { query = { total = 2000 }, per_page = 100 })
      assert.is_nil(items)
      assert.are.equal("network", err.kind)
      assert.matches("max_body_bytes", tostring(err), 1, true)
      assert.are.equal("0:1000:0", state.cursor)
      assert.are.equal(10, state.pages)
      assert_items_in_order(state.items, 1, 1000)

      local rest, rest_err, final = client:collect(ITEMS, { query = { total = 2000 }, per_page = 100,
        cursor = state.cursor })
      assert.is_nil(rest_err)
      assert_items_in_order(rest, 1001, 2000)
      assert.is_true(final.done)
      small:close()
    end)

    it("keeps a limit exact across the failure and the resumed walk", function()
      local small, urls = recording_client { max_body_bytes = SMALL_BODY, max_retries = 0 }
      local _, err, state = small:collect(ITEMS, { query = { total = 2000 }, limit = 1234 })
      assert.is_table(err)
      assert.are.equal(1000, state.count)
      local recorder, resumed_urls = recording_client()
      local rest, _, final = recorder:collect(ITEMS, { query = { total = 2000 }, cursor = state.cursor,
        limit = 1234 - state.count })
      assert_items_in_order(rest, 1001, 1234)
      assert.are.equal("0:1234:0", final.cursor)
      assert.are.equal(11, #urls)
      assert.are.same({ "0:1000:0", "0:1100:0", "0:1200:0" }, {
        query_value(resumed_urls[1], "cursor"), query_value(resumed_urls[2], "cursor"),
        query_value(resumed_urls[3], "cursor") })
      assert.are.equal("34", query_value(resumed_urls[3], "per_page"))
      small:close()
      recorder:close()
    end)

    -- The fake limits each token to 1000 requests per 10-second window on each
    -- endpoint. Use up all but two, walk: pages 1 and 2 pass, page 3 is refused
    -- by the client itself (the window is used up and max_retry_wait = 0), and
    -- another token, which has its own window, finishes the walk.
    it("continues with another token after a rate limit stops the walk", function()
      local limited = assert(harness.client { token = harness.tokens.legacy, max_retry_wait = 0 })
      local WINDOW = 10 -- the fake's windows start at multiples of 10 s of the clock
      local items, err, state
      for _ = 1, 3 do -- another try only if a slow run still crossed a window's end
        -- start at a window's beginning: using it up and the walk fit inside it
        local into = core.now() % WINDOW
        if into > 0.5 then core.sleep(WINDOW - into + 0.05) end
        fake.reset()
        local first = assert(limited:get(PROJECTS, { query = { per_page = 1 } }))
        local requests = {}
        for i = 1, first.rate_limit.remaining - 2 do requests[i] = { "GET", PROJECTS, { query = { per_page = 1 } } } end
        for _, result in ipairs(limited:batch(requests, { concurrency = 25 })) do
          assert(result.res, tostring(result.err))
        end
        items, err, state = limited:collect(PROJECTS, { per_page = 100 })
        if err then break end
      end
      assert.is_nil(items)
      assert.are.equal("rate_limited", err.kind)
      assert.is_number(err.retry_after)
      assert.are.equal("0:200:0", state.cursor)
      assert.are.same(project_slugs(1, 200), slugs(state.items))

      local other = assert(harness.client { token = harness.tokens.user_read })
      local rest = assert(other:collect(PROJECTS, { per_page = 100, cursor = state.cursor }))
      assert.are.same(project_slugs(201, 250), slugs(rest))
      limited:close()
      other:close()
      fake.reset()
    end)
  end)

  describe("memory", function()
    -- Walking 100k items over 1000 pages holds one page at a time: memory still
    -- reachable after a full collection stays where it was after 10k items.
    it("stays flat while walking 100k items", function()
      local total = 100000
      collectgarbage("collect")
      -- Peaks are compared between two equal stretches after the first 10k
      -- items: by then the collector runs in its steady rhythm, whereas the
      -- first stretch may end before its first full cycle peaks.
      local peak_early, peak_late, live_10k = 0, 0, nil
      local count = 0
      for page in client:pages(ITEMS, { query = { total = total }, per_page = 100 }) do
        count = count + #page
        local kb = collectgarbage("count")
        if count > 10000 and count <= 55000 and kb > peak_early then peak_early = kb end
        if count > 55000 and kb > peak_late then peak_late = kb end
        if count == 10000 then
          collectgarbage("collect")
          live_10k = collectgarbage("count")
        end
      end
      collectgarbage("collect")
      local live_end = collectgarbage("count")
      assert.are.equal(total, count)
      -- Keeping the items would add megabytes (see below), and a leak of even a
      -- kilobyte a page 900 KB; allow for Lua 5.1's string table, which grows
      -- with the strings of a walk and shrinks only later.
      assert.is_true(live_end - live_10k < 256,
        string.format("live memory grew from %.0f KB to %.0f KB", live_10k, live_end))
      -- Inside nginx the collector's pace follows the whole worker, so peaks
      -- there say little; live memory (above) is the measure on every transport.
      -- The peaks follow the collector's pace, which the specs before this one
      -- shift (Lua 5.3 once peaked 27% higher late in a full run): a coarse
      -- guard against keeping pages; the live memory above is the fine one.
      if harness.transport() == "curl" then
        assert.is_true(peak_late < peak_early * 1.5,
          string.format("peak %.0f KB over items 55k-100k, %.0f KB over 10k-55k", peak_late, peak_early))
      end
    end)

    it("is measured sensitively enough to see 10k collected items", function()
      collectgarbage("collect")
      local before = collectgarbage("count")
      local items = assert(client:collect(ITEMS, { query = { total = 10000 } }))
      collectgarbage("collect")
      local held = collectgarbage("count") - before
      assert.are.equal(10000, #items)
      assert.is_true(held > 500, string.format("10k items hold only %.0f KB", held))
    end)
  end)
end)

-- The walk's own safeguards, against a scripted stand-in for the client: the
-- fake server, like Sentry, never misbehaves this way.
describe("pagination safeguards", function()
  local function scripted(pages)
    local stub = { sent = {} }
    function stub.request(_, method, target, opts)
      stub.sent[#stub.sent + 1] = { method = method, target = target, opts = opts }
      local page = pages[#stub.sent]
      return { status = 200, headers = {}, body = page.body,
        links = page.link and links.parse(page.link) }
    end
    return stub
  end

  local function link(cursor, results)
    return string.format('<https://sentry.example/api/0/things/?&cursor=0:0:1>; rel="previous"; '
      .. 'results="false"; cursor="0:0:1", <https://sentry.example/api/0/things/?&cursor=%s>; '
      .. 'rel="next"; results="%s"; cursor="%s"', cursor, tostring(results), cursor)
  end

  it("stops with an error when the server sends the same cursor again", function()
    local stub = scripted {
      { body = { 1, 2 }, link = link("0:2:0", true) },
      { body = { 3, 4 }, link = link("0:2:0", true) },
    }
    local items, err, state = paginate.collect(stub, "/things/")
    assert.is_nil(items)
    assert.are.equal("decode", err.kind)
    assert.matches("same cursor again", tostring(err), 1, true)
    assert.are.equal(2, #stub.sent)
    assert.are.equal("0:2:0", state.cursor)
    assert.are.same({ 1, 2 }, state.items)
  end)

  it("stops with an error when a next link with results has no cursor", function()
    local stub = scripted {
      { body = { 1 }, link = '<https://sentry.example/api/0/things/>; rel="next"; results="true"' },
    }
    local items, err = paginate.collect(stub, "/things/")
    assert.is_nil(items)
    assert.matches("no cursor", err.detail, 1, true)
  end)

  it("treats a response without a Link header as the only page", function()
    local stub = scripted { { body = { 1, 2, 3 } } }
    local items, _, state = paginate.collect(stub, "/things/")
    assert.are.same({ 1, 2, 3 }, items)
    assert.is_true(state.done)
  end)

  it("follows the next URL verbatim, replacing only per_page on the last page", function()
    local next_url = "https://sentry.example/api/0/things/?query=is%3Aunresolved&per_page=3&cursor=0:3:0"
    local stub = scripted {
      { body = { 1, 2, 3 }, link = '<' .. next_url .. '>; rel="next"; results="true"; cursor="0:3:0"' },
      { body = { 4, 5 }, link = link("0:5:0", true) },
    }
    local items = assert(paginate.collect(stub, "/things/", { per_page = 3, limit = 5,
      query = { query = "is:unresolved" } }))
    assert.are.same({ 1, 2, 3, 4, 5 }, items)
    assert.are.same({ per_page = 3, query = "is:unresolved" }, stub.sent[1].opts.query)
    assert.are.equal("https://sentry.example/api/0/things/?query=is%3Aunresolved&cursor=0:3:0&per_page=2",
      stub.sent[2].target)
  end)

  it("rebuilds the request from path and cursor when the next URL is on another origin", function()
    local stub = scripted {
      { body = { 1 }, link = '<http://internal:9000/api/0/things/?&cursor=0:1:0>; rel="next"; '
        .. 'results="true"; cursor="0:1:0"' },
      { body = { 2 }, link = link("0:2:0", false) },
    }
    stub.base_url = "https://sentry.example/api/0/"
    local items = assert(paginate.collect(stub, "/things/", { query = { status = "open" } }))
    assert.are.same({ 1, 2 }, items)
    assert.are.equal("/things/", stub.sent[2].target)
    assert.are.same({ status = "open", cursor = "0:1:0" }, stub.sent[2].opts.query)
  end)

  it("drops what a server that ignores per_page sends beyond the limit, and says so", function()
    local stub = scripted { { body = { 1, 2, 3, 4, 5 }, link = link("0:5:0", true) } }
    local items, _, state = paginate.collect(stub, "/things/", { limit = 2 })
    assert.are.same({ 1, 2 }, items)
    assert.are.equal(3, state.dropped)
  end)
end)
