--- Error objects: every run-time failure is returned as `nil, err`.
-- `err` is a table with `kind`, `status`, `detail`, `code`, `body`, `method`,
-- `url`, `retry_after`, `rate_limit`, `attempts` (absent fields are nil) and a
-- `__tostring` that renders one readable line.
-- @module sentry.errors
local text_helpers = require "sentry.text"
local token = require "sentry.token"

local errors = {}

--- The metatable shared by every error object.
local Error = {}
Error.__index = Error

--- Error kinds by HTTP status; any other status >= 400 is "http".
local KIND_BY_STATUS = {
  [401] = "unauthorized",
  [403] = "forbidden",
  [404] = "not_found",
  [429] = "rate_limited",
}

--- Words shown after the status in messages.
local STATUS_WORDS = {
  [302] = "found", [400] = "bad request", [401] = "unauthorized", [403] = "forbidden",
  [404] = "not found", [409] = "conflict", [410] = "gone", [413] = "payload too large",
  [429] = "too many requests", [500] = "internal server error", [502] = "bad gateway",
  [503] = "service unavailable", [504] = "gateway timeout",
}

local MAX_DETAIL = 300

--- How much of an error body is read for its message: a page's title or
-- first words come early, and the rest may be megabytes.
local MAX_SCANNED = 64 * 1024

local function render_scopes(list)
  return table.concat(list, ", ")
end

function Error:__tostring()
  local parts = { "sentry: " }
  if self.status then
    parts[#parts + 1] = tostring(self.status) .. " " .. (STATUS_WORDS[self.status] or self.kind)
  else
    parts[#parts + 1] = self.kind
  end
  if self.detail and self.detail ~= "" then
    parts[#parts + 1] = ": " .. self.detail
  end
  if self.code and self.status then
    parts[#parts + 1] = " [" .. self.code .. "]"
  end
  if self.required_scopes and #self.required_scopes > 0 then
    parts[#parts + 1] = "; needs one of: " .. render_scopes(self.required_scopes)
    if self.token_scopes then
      local granted = #self.token_scopes > 0 and render_scopes(self.token_scopes) or "none"
      parts[#parts + 1] = "; token has: " .. granted
    end
  end
  if self.retry_after then
    parts[#parts + 1] = string.format("; retry after %.1f s", self.retry_after)
  end
  if self.location then
    parts[#parts + 1] = "; moved to " .. self.location
  end
  if self.method and self.url then
    parts[#parts + 1] = " (" .. self.method .. " " .. self.url .. ")"
  end
  return table.concat(parts)
end

--- Makes an error object. Token-like text in `detail` (a proxy may echo the
-- request's Authorization header in its error page) is masked.
-- @tparam table fields at least `kind`
-- @treturn table the error
function errors.new(fields)
  if type(fields.detail) == "string" then fields.detail = token.scrub(fields.detail) end
  return setmetatable(fields, Error)
end

--- Applies a scrubber (see `sentry.token.scrubber`) to every string an
-- error holds: its message fields, the server's body (decoded or raw) and
-- the response headers, keys included.
-- @tparam table err the error, changed in place
-- @tparam function scrub `scrub(text) -> text`
-- @treturn table err
function errors.scrub(err, scrub)
  local seen = {}
  local function clean(value)
    if type(value) == "string" then return scrub(value) end
    if type(value) ~= "table" or seen[value] then return value end
    seen[value] = true
    local entries = {}
    for key, item in pairs(value) do entries[#entries + 1] = { key, item } end
    for _, entry in ipairs(entries) do
      local key, item = entry[1], entry[2]
      local clean_key, clean_item = clean(key), clean(item)
      if clean_key ~= key then value[key] = nil end
      value[clean_key] = clean_item
    end
    return value
  end
  for _, field in ipairs { "detail", "body", "headers", "location", "url", "code" } do
    err[field] = clean(err[field])
  end
  return err
end

--- Shorthand for a bad argument or configuration found at run time.
-- @tparam string detail what was wrong and how to fix it
-- @treturn table the error (kind "invalid")
function errors.invalid(detail)
  return errors.new { kind = "invalid", detail = detail }
end

--- Is this value one of our error objects?
-- @param value anything
-- @treturn boolean
function errors.is(value)
  return getmetatable(value) == Error
end

-- The directory of sentry-lua's own files: their frames are not the caller.
local LIBRARY_DIR = debug.getinfo(1, "S").source:match("^@(.*[/\\])[^/\\]*$")

--- Raises `message` at the first line outside sentry-lua that led here (the
-- caller's file and line), however deep the library's own calls go.
-- @tparam string message what was wrong and how to fix it
-- @local
function errors.raise_at_caller(message)
  local level = 2
  local info = debug.getinfo(level, "Sl")
  while info do
    local own = LIBRARY_DIR ~= nil and info.source:sub(1, #LIBRARY_DIR + 1) == "@" .. LIBRARY_DIR
    if not own and info.what ~= "C" and info.currentline > 0 then
      error(info.short_src .. ":" .. info.currentline .. ": " .. message, 0)
    end
    level = level + 1
    info = debug.getinfo(level, "Sl")
  end
  error(message, 0)
end

--- Raises, at the caller's line, what the transport said when it refused a
-- request: without the library's own file and line where an interpreter put
-- one (Lua 5.x names the library's line, LuaJIT none); an error object is
-- raised unchanged.
-- @param problem what was caught
-- @local
function errors.raise_about_request(problem)
  if type(problem) ~= "string" then error(problem, 0) end
  if LIBRARY_DIR and problem:sub(1, #LIBRARY_DIR) == LIBRARY_DIR then
    problem = problem:match("^[^:]+%.lua:%d+: (.*)$", #LIBRARY_DIR + 1) or problem
  end
  errors.raise_at_caller(problem)
end

--- The error kind for an HTTP status.
-- @tparam number status
-- @treturn string
function errors.kind_for_status(status)
  return KIND_BY_STATUS[status] or "http"
end

local function squeeze(text)
  text = text_helpers.trim((text:sub(1, MAX_SCANNED):gsub("%s+", " ")))
  if #text > MAX_DETAIL then text = text:sub(1, MAX_DETAIL - 3) .. "..." end
  return text
end

-- The page's <title>, found with plain searches (patterns like "<title.-</title>"
-- backtrack: minutes on a hostile page).
local function page_title(raw, lower)
  local open = lower:find("<title", 1, true)
  local content = open and lower:find(">", open, true)
  local close = content and lower:find("</title>", content, true)
  if not close then return nil end
  local title = raw:sub(content + 1, close - 1)
  return title:find("%S") and title or nil
end

-- The page's text: tags become spaces, scripts and styles are left out.
local function page_text(raw, lower)
  local parts, position = {}, 1
  local unclosed = {} -- elements with no closing tag in the rest of the page
  while true do
    local tag = lower:find("<", position, true)
    parts[#parts + 1] = raw:sub(position, (tag or 0) - 1)
    if not tag then break end
    local element = lower:match("^<(script)", tag) or lower:match("^<(style)", tag)
    local tag_end = element and not unclosed[element] and lower:find("</" .. element .. ">", tag, true)
    if tag_end then
      tag_end = tag_end + #element + 2
    else
      if element then unclosed[element] = true end
      tag_end = lower:find(">", tag, true)
    end
    if not tag_end then -- a lone "<" is text ("a < b")
      parts[#parts + 1] = raw:sub(tag)
      break
    end
    parts[#parts + 1] = " "
    position = tag_end + 1
  end
  return table.concat(parts)
end

local function text_detail(raw)
  raw = raw:sub(1, MAX_SCANNED)
  local lower = raw:lower()
  local detail = squeeze(page_title(raw, lower) or page_text(raw, lower))
  if detail ~= "" then return detail end
  return nil
end

-- The messages of one field: its strings (a hostile body may put null or
-- objects among them), or nil.
local function field_messages(value)
  if type(value) ~= "table" then return nil end
  local messages = {}
  for _, message in ipairs(value) do
    if type(message) == "string" then messages[#messages + 1] = message end
  end
  return #messages > 0 and table.concat(messages, " ") or nil
end

local function field_errors(body)
  local keys = {}
  for key, value in pairs(body) do
    if type(key) == "string" and field_messages(value) then
      keys[#keys + 1] = key
    end
  end
  if #keys == 0 then return nil end
  table.sort(keys)
  local parts = {}
  for i, key in ipairs(keys) do
    parts[i] = key .. ": " .. field_messages(body[key])
  end
  return squeeze(table.concat(parts, "; "))
end

--- Extracts a human message (and a machine code) from any error body shape
-- Sentry sends: `{"detail": "..."}`, `{"detail": {"code", "message"}}`, field
-- errors, `{"message": "..."}`, a bare JSON string, or text/HTML.
-- @param body the decoded JSON body, or nil
-- @tparam string raw the raw body
-- @treturn ?string detail
-- @treturn ?string code
function errors.extract_detail(body, raw)
  if type(body) == "string" then return squeeze(body), nil end
  if type(body) == "table" then
    local detail, code = body.detail, nil
    if type(detail) == "table" then
      code = type(detail.code) == "string" and detail.code or nil
      detail = detail.message
    end
    if type(detail) ~= "string" then
      detail = type(body.message) == "string" and body.message or field_errors(body)
    end
    if type(body.errorId) == "string" then
      detail = (detail or "error") .. " (error id " .. body.errorId .. ")"
    end
    if detail then return squeeze(detail), code end
  end
  if type(raw) == "string" and raw ~= "" then return text_detail(raw), nil end
  return nil, nil
end

return errors
