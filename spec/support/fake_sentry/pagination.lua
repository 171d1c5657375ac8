-- Sentry's cursor pagination: per_page, "value:offset:is_prev" cursors, and a
-- Link header that always carries both relations.
-- luacheck: globals ngx

local json = require "fake_sentry.json"
local respond = require "fake_sentry.respond"

local pagination = {}

pagination.DEFAULT_PER_PAGE = 100
pagination.MAX_PER_PAGE = 100

-- Django's QueryDict.get() returns the last value of a repeated key.
local function last_value(value)
  if type(value) == "table" then return value[#value] end
  return value
end

local function parse_per_page(args)
  local raw = last_value(args.per_page)
  if raw == nil then return pagination.DEFAULT_PER_PAGE end
  -- Python's int() accepts a sign and surrounding blanks, nothing else.
  local n = type(raw) == "string" and raw:match("^%s*([+-]?%d+)%s*$")
  if not n then respond.bad_request("Invalid per_page parameter.") end
  n = tonumber(n)
  if n > pagination.MAX_PER_PAGE then
    respond.bad_request(string.format("Invalid per_page value. Cannot exceed %d.",
      pagination.MAX_PER_PAGE))
  end
  if n < 1 then respond.bad_request("Invalid per_page value. Must be at least 1.") end
  return n
end

local function parse_offset(args)
  local raw = last_value(args.cursor)
  if raw == nil then return 0 end
  -- The value part is opaque; this server only uses the offset.
  local offset = type(raw) == "string" and raw:match("^[^:]*:(%d+):[01]$")
  if not offset then respond.bad_request("Invalid cursor parameter.") end
  return tonumber(offset)
end

-- The request URL minus its cursor parameters, ending in "?" + query, so that
-- "&cursor=..." can be appended: "?&cursor=" when there was no other query.
local function link_base(origin)
  local path, query = ngx.var.request_uri:match("^([^?]*)%??(.*)$")
  local kept = {}
  for part in query:gmatch("[^&]+") do
    if ngx.unescape_uri(part:match("^[^=]*")) ~= "cursor" then kept[#kept + 1] = part end
  end
  return origin .. path .. "?" .. table.concat(kept, "&")
end

local function link(base, rel, cursor, results)
  return string.format('<%s&cursor=%s>; rel="%s"; results="%s"; cursor="%s"',
    base, cursor, rel, tostring(results), cursor)
end

-- Returns the requested page of a list of total items (item_at(i) builds item i,
-- 1-based) and sets Link and X-Hits; raises a 400 for a bad per_page or cursor.
function pagination.paginate(origin, args, total, item_at)
  local per_page = parse_per_page(args)
  local offset = parse_offset(args)

  local page = json.array()
  for i = offset + 1, math.min(offset + per_page, total) do
    page[#page + 1] = item_at(i)
  end

  local base = link_base(origin)
  local previous = string.format("0:%d:1", math.max(offset - per_page, 0))
  local next_cursor = string.format("0:%d:0", offset + per_page)
  ngx.header["Link"] = link(base, "previous", previous, offset > 0) .. ", "
    .. link(base, "next", next_cursor, offset + per_page < total)
  ngx.header["X-Hits"] = total
  return page
end

-- Pages through a Lua list.
function pagination.paginate_list(origin, args, list)
  return pagination.paginate(origin, args, #list, function(i) return list[i] end)
end

return pagination
