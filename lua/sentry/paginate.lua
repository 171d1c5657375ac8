--- Walking Sentry's paginated lists. These functions are the client methods
-- `client:pages`, `client:paginate` and `client:collect`.
--
--     for page, res in client:pages("/organizations/{org}/projects/") do ... end
--     for project in client:paginate("/organizations/{org}/projects/", { limit = 150 }) do ... end
--     local issues, err, state = client:collect("/organizations/{org}/issues/", { per_page = 50 })
--
-- Sentry paginates with cursors: every list response carries a `Link` header
-- with a `next` link, and there is another page only when that link says
-- `results="true"`. The walk follows the `next` link's URL as the server sent
-- it (so any query the server keeps in it stays intact; a link to another
-- origin, which would not get the token, is replaced by the original path and
-- query with the link's cursor), one page at a time:
-- only the current page is held in memory, and every page is an ordinary
-- `client:request`, so retries and rate-limit waits apply to each.
--
-- **Options** (all optional):
--
-- - `per_page`: items per page (Sentry's default and maximum is 100; above
--   the maximum the server answers 400). Overrides `query.per_page`.
-- - `limit`: the most items to return. The walk never returns more, and never
--   asks for a page the limit does not need: the page that reaches the limit
--   is requested with a smaller `per_page`, so it ends exactly at the limit
--   and the next cursor points at the first item not returned.
-- - `max_pages`: the most pages to request.
-- - `cursor`: where to start, e.g. `state.cursor` from an earlier `collect`.
-- - `prefetch` (`pages` and `paginate` only): `true` requests page k+1 as soon
--   as page k arrives, so it travels while the caller works on page k (a page
--   costs max(round trip, the caller's work) instead of their sum). Results,
--   `limit`, `max_pages`, cursors and rate-limit rules are the same; a loop
--   left early has requested one page it did not use.
-- - `params`, `query`, `headers`, `timeout`: passed to `client:request`
--   (`params` and `query` build the first page's URL; later pages use the
--   server's `next` URL, which already holds the query).
--
-- **Errors.** The iterators `pages` and `paginate` raise the error object
-- (`sentry.errors`, printable with `tostring`) when a page fails: wrap the
-- loop in `pcall`, or use `collect`, which returns `nil, err, state` instead.
-- Besides the kinds of `client:request`, a walk fails with kind `"decode"`
-- when a page is not a JSON list, when its `Link` header cannot be read, when
-- a `next` link with results has no cursor or a URL with a space in it, and
-- when the server sends the cursor it was just asked for again (a walk that
-- would never end).
--
-- Wrong argument types raise at once, as Lua's own libraries do.
-- @module sentry.paginate

local errors = require "sentry.errors"
local links = require "sentry.links"
local url = require "sentry.url"

local paginate = {}

--- What Sentry sends when a request has no `per_page`: its default (and
-- maximum) page size. Used to decide when the last page must be made smaller.
paginate.SERVER_PAGE_SIZE = 100

local OPTION_TYPES = {
  per_page = "number", limit = "number", max_pages = "number", cursor = "string",
  params = "table", query = "table", headers = "table", timeout = "number", prefetch = "boolean",
}

local function is_count(value, minimum)
  return value == math.floor(value) and value >= minimum and value < math.huge
end

local function check_args(client, path, opts, name)
  if type(client) ~= "table" or type(client.request) ~= "function" then
    error(string.format("bad self to '%s' (expected a sentry client: use client:%s())", name, name), 3)
  end
  if type(path) ~= "string" then
    error(string.format("bad argument #1 to '%s' (path must be a string)", name), 3)
  end
  if opts == nil then return {} end
  if type(opts) ~= "table" then
    error(string.format("bad argument #2 to '%s' (options must be a table)", name), 3)
  end
  for key, value in pairs(opts) do
    local expected = OPTION_TYPES[key]
    if not expected then
      error(string.format("%s: unknown option '%s'", name, tostring(key)), 3)
    end
    if type(value) ~= expected then
      error(string.format("%s: option '%s' must be a %s, got %s", name, key, expected, type(value)), 3)
    end
  end
  if opts.per_page and not is_count(opts.per_page, 1) then
    error(name .. ": option 'per_page' must be a whole number of at least 1", 3)
  end
  if opts.limit and not is_count(opts.limit, 0) then
    error(name .. ": option 'limit' must be a whole number of at least 0", 3)
  end
  if opts.max_pages and not is_count(opts.max_pages, 0) then
    error(name .. ": option 'max_pages' must be a whole number of at least 0", 3)
  end
  return opts
end

-- Is the decoded body a JSON array? (lua-cjson gives a table with keys 1..n;
-- an empty object and an empty array look the same and both pass.)
local function is_list(body)
  if type(body) ~= "table" then return false end
  local n = #body
  for key in pairs(body) do
    if type(key) ~= "number" or key < 1 or key > n or key ~= math.floor(key) then return false end
  end
  return true
end

local function describe_value(body)
  if type(body) == "table" then return "a JSON object" end
  if type(body) == "string" then return body == "" and "an empty body" or "a body that is not JSON" end
  if body == nil then return "nothing" end
  return "a JSON " .. type(body)
end

-- Replaces (or adds) one query parameter in a URL, leaving the rest of its
-- query exactly as the server wrote it.
local function set_query_parameter(target, name, value)
  local base, parts = url.query_parts(target)
  local kept = {}
  for _, part in ipairs(parts) do
    if part.key ~= name then kept[#kept + 1] = part.raw end
  end
  kept[#kept + 1] = name .. "=" .. value
  return base .. "?" .. table.concat(kept, "&")
end

-- The page size the server will use when we do not override it.
local function natural_page_size(opts)
  if opts.per_page then return opts.per_page end
  local from_query = opts.query and tonumber(opts.query.per_page)
  return from_query or paginate.SERVER_PAGE_SIZE
end

--- One walk over a list: where it stands, never the items themselves.
local Walk = {}
Walk.__index = Walk

local function new_walk(client, path, opts)
  local start = opts.cursor
  if start == nil and opts.query and opts.query.cursor ~= nil then start = tostring(opts.query.cursor) end
  return setmetatable({
    client = client, path = path, opts = opts,
    page_size = natural_page_size(opts),
    cursor = start,   -- the cursor of the next page to fetch (nil: the first page)
    next_url = nil,   -- the server's URL for that page, once there is one
    pages = 0, count = 0,
    finished = false, -- no more pages will be requested
    at_end = false,   -- the server said there is nothing after the last page
    dropped = 0,
  }, Walk)
end

-- The request for the next page: target and options for client:request.
function Walk:next_request(wanted)
  local opts = self.opts
  local shrink = wanted and wanted < self.page_size and wanted or nil
  local request_opts = { headers = opts.headers, timeout = opts.timeout }
  if self.next_url then
    local target = self.next_url
    if shrink then target = set_query_parameter(target, "per_page", shrink) end
    return target, request_opts
  end
  local query = {}
  for key, value in pairs(opts.query or {}) do query[key] = value end
  query.per_page = shrink or opts.per_page or query.per_page
  query.cursor = self.cursor
  request_opts.params, request_opts.query = opts.params, query
  return self.path, request_opts
end

function Walk:same_origin(target)
  local root = self.client.base_url
  return root == nil or url.origin(target) == url.origin(root)
end

function Walk:fail(err)
  self.finished = true
  self.err = err
  return nil, err
end

function Walk:malformed(res, target, detail)
  return self:fail(errors.new { kind = "decode", status = res.status, method = "GET", url = target,
    detail = detail, rate_limit = res.rate_limit, attempts = res.attempts })
end

--- The next page's request, or nothing when the walk is over.
-- @treturn ?string target
-- @treturn ?table options for `client:request`
-- @treturn ?number how many items the walk still wants (nil: no limit)
function Walk:prepare()
  if self.err or self.finished then return nil end
  local wanted = self.opts.limit and self.opts.limit - self.count
  if (wanted and wanted <= 0) or (self.opts.max_pages and self.pages >= self.opts.max_pages) then
    self.finished = true
    return nil
  end
  local target, request_opts = self:next_request(wanted)
  return target, request_opts, wanted
end

--- Takes the response to `prepare`'s request and moves the walk on.
-- @return the page's items and `res`, or nil and err
function Walk:take(target, wanted, res, err)
  if not res then return self:fail(err) end
  local page = res.body
  if not is_list(page) then
    return self:malformed(res, target, "the endpoint did not return a list (got "
      .. describe_value(page) .. "), so it cannot be paginated")
  end

  if res.links == nil and res.headers.link then
    local _, why = links.parse(res.headers.link)
    return self:malformed(res, target, "the Link header cannot be read (" .. why
      .. "), so where the next page is is unknown")
  end
  local following = res.links and res.links.next
  if links.has_next(res.links) then
    if not following.cursor or following.url == "" then
      return self:malformed(res, target, "the next link has results but no cursor")
    end
    if following.url:find("[%s%c]") then
      return self:malformed(res, target, "the next link's URL holds a space or control character, "
        .. "which no URL may hold")
    end
    if following.cursor == self.cursor then
      return self:malformed(res, target, "the server sent the same cursor again (" .. following.cursor
        .. "); stopping instead of walking in a circle")
    end
  end

  -- Only a server that ignores per_page sends more than was asked for.
  if wanted and #page > wanted then
    self.dropped = #page - wanted
    for i = #page, wanted + 1, -1 do page[i] = nil end
  end
  self.pages = self.pages + 1
  self.count = self.count + #page
  if links.has_next(res.links) then
    self.cursor = following.cursor
    -- A next URL on another origin (a proxy or a misconfigured url-prefix in
    -- front of the server) would not get the token: rebuild it from the path.
    self.next_url = self:same_origin(following.url) and following.url or nil
  else
    self.cursor, self.next_url = nil, nil
    self.finished, self.at_end = true, true
  end
  return page, res
end

--- Fetches the next page (blocking).
-- @return the page's items and `res`; nothing at the end; or nil and err
function Walk:next_page()
  if self.err then return nil, self.err end
  local target, request_opts, wanted = self:prepare()
  if not target then return nil end
  return self:take(target, wanted, self.client:request("GET", target, request_opts))
end

--- Sends the next page's request and returns a function that waits for it
-- and moves the walk on (results as `next_page`).
function Walk:start_next_page()
  local err = self.err
  if err then return function() return nil, err end end
  local target, request_opts, wanted = self:prepare()
  if not target then return function() return nil end end
  local wait = require("sentry.batch").start(self.client, "GET", target, request_opts)
  return function() return self:take(target, wanted, wait()) end
end

-- The walk's pages one call at a time; with `prefetch`, each call returns a
-- page and has already sent the request for the one after it.
local function page_reader(walk)
  if not walk.opts.prefetch then return function() return walk:next_page() end end
  local pending
  return function()
    local page, res = (pending or walk:start_next_page())()
    pending = page ~= nil and walk:start_next_page() or nil
    return page, res
  end
end

--- Fetches the next page without blocking: `callback(page, res)`,
-- `callback(nil)` at the end, or `callback(nil, err)`.
function Walk:next_page_async(callback)
  if self.err then return callback(nil, self.err) end
  local target, request_opts, wanted = self:prepare()
  if not target then return callback(nil) end
  self.client:request_async("GET", target, request_opts, function(res, err)
    callback(self:take(target, wanted, res, err))
  end)
end

--- Where the walk stands, for `collect`'s third result.
function Walk:state(items)
  return { cursor = self.cursor, done = self.at_end, pages = self.pages, count = self.count,
    items = items, dropped = self.dropped > 0 and self.dropped or nil }
end

--- Iterates over the pages of a list.
--
--     for page, res in client:pages("/organizations/{org}/projects/", { per_page = 50 }) do
--       print(#page, res.headers["x-hits"])
--     end
--
-- Raises the error object when a page fails (see the module description).
-- @tparam sentry.Client client
-- @tparam string path any path `client:request` accepts
-- @tparam[opt] table opts `{ per_page, limit, max_pages, cursor, params, query, headers, timeout }`
-- @return an iterator yielding `page_items, res` for each page
function paginate.pages(client, path, opts)
  local walk = new_walk(client, path, check_args(client, path, opts, "pages"))
  local read_page = page_reader(walk)
  return function()
    local page, res = read_page()
    if page == nil and res ~= nil then error(res, 0) end
    return page, res
  end
end

--- Iterates over the items of a list, one at a time, fetching pages as needed.
--
--     for project in client:paginate("/organizations/{org}/projects/") do print(project.slug) end
--
-- Raises the error object when a page fails (see the module description).
-- @tparam sentry.Client client
-- @tparam string path any path `client:request` accepts
-- @tparam[opt] table opts as for `pages`
-- @return an iterator yielding each item
function paginate.items(client, path, opts)
  local walk = new_walk(client, path, check_args(client, path, opts, "paginate"))
  local read_page = page_reader(walk)
  local page, index = {}, 0
  return function()
    while index >= #page do
      local err
      page, err = read_page()
      if page == nil then
        if err ~= nil then error(err, 0) end
        page = {}
        return nil
      end
      index = 0
    end
    index = index + 1
    return page[index]
  end
end

--- Collects the items of a list into one array. Never raises for run-time
-- failures.
--
--     local items, err, state = client:collect(path, { limit = 500 })
--     if not items then
--       -- state.items holds what arrived before the failure; later:
--       local rest = client:collect(path, { cursor = state.cursor, limit = 500 - state.count })
--     end
--
-- @tparam sentry.Client client
-- @tparam string path any path `client:request` accepts
-- @tparam[opt] table opts as for `pages`
-- @treturn ?table the items, in the server's order (nil on failure)
-- @treturn ?table err on failure
-- @treturn table state `{ cursor, done, pages, count, items, dropped }`:
--   `cursor` is where a later call continues with `opts.cursor`. After a
--   failure it is the cursor of the page that failed (nil when that was the
--   first page of a walk started without a cursor), so resuming from it
--   neither skips nor repeats an item. After success it is the next page's
--   cursor when the walk stopped at `limit` or `max_pages` with more to come,
--   and nil when `done` (the server said the list has ended). `pages` and
--   `count` are the pages fetched and items returned, `items` the items (on
--   failure, those that arrived before it). `dropped` is set only when a
--   server ignored `per_page` and sent more items than `limit` allowed:
--   they were left out, and a resumed walk will not see them.
function paginate.collect(client, path, opts)
  local walk = new_walk(client, path, check_args(client, path, opts, "collect"))
  local items = {}
  while true do
    local page, err = walk:next_page()
    if page == nil then
      if err ~= nil then return nil, err, walk:state(items) end
      return items, nil, walk:state(items)
    end
    for i = 1, #page do items[#items + 1] = page[i] end
  end
end

--- Walks the pages of a list without blocking, on the client's event loop
-- (see `sentry.async`; in Neovim, callbacks run through `vim.schedule`).
--
--     client:pages_async("/organizations/{org}/projects/", { per_page = 100 },
--       function(page, res) for _, p in ipairs(page) do print(p.slug) end end,
--       function(err, state) if err then print(tostring(err)) end end)
--
-- The next page is requested after `on_page` returns; `on_page` returning
-- `false` ends the walk there. `on_done(err, state)` runs once, at the end,
-- with `state` as `collect` gives it (without `items`). Never raises for
-- run-time failures: they reach `on_done`.
-- @tparam sentry.Client client
-- @tparam string path any path `client:request` accepts
-- @tparam ?table opts as for `pages`
-- @tparam function on_page `on_page(page_items, res)`
-- @tparam ?function on_done `on_done(err, state)`
function paginate.pages_async(client, path, opts, on_page, on_done)
  local walk = new_walk(client, path, check_args(client, path, opts, "pages_async"))
  if type(on_page) ~= "function" then error("bad argument #3 to 'pages_async' (a function expected)", 2) end
  if on_done ~= nil and type(on_done) ~= "function" then
    error("bad argument #4 to 'pages_async' (a function or nil expected)", 2)
  end
  local function step()
    walk:next_page_async(function(page, res_or_err)
      if page == nil then
        if on_done then on_done(res_or_err, walk:state(nil)) end
        return
      end
      if on_page(page, res_or_err) == false then
        walk.finished = true
        if on_done then on_done(nil, walk:state(nil)) end
        return
      end
      step()
    end)
  end
  step()
end

--- Walks the items of a list without blocking: `on_item(item)` for each
-- (returning `false` ends the walk), then `on_done(err, state)` once.
-- @tparam sentry.Client client
-- @tparam string path any path `client:request` accepts
-- @tparam ?table opts as for `pages`
-- @tparam function on_item `on_item(item)`
-- @tparam ?function on_done `on_done(err, state)`
function paginate.items_async(client, path, opts, on_item, on_done)
  if type(on_item) ~= "function" then error("bad argument #3 to 'paginate_async' (a function expected)", 2) end
  paginate.pages_async(client, path, opts, function(page)
    for i = 1, #page do
      if on_item(page[i]) == false then return false end
    end
  end, on_done)
end

--- Collects the items of a list without blocking; `callback(items, err,
-- state)` runs once, with the results `collect` would return.
-- @tparam sentry.Client client
-- @tparam string path any path `client:request` accepts
-- @tparam ?table opts as for `pages`
-- @tparam function callback `callback(items, err, state)`
function paginate.collect_async(client, path, opts, callback)
  if type(callback) ~= "function" then error("bad argument #3 to 'collect_async' (a function expected)", 2) end
  local items = {}
  paginate.pages_async(client, path, opts, function(page)
    for i = 1, #page do items[#items + 1] = page[i] end
  end, function(err, state)
    state.items = items
    if err then return callback(nil, err, state) end
    callback(items, nil, state)
  end)
end

return paginate
