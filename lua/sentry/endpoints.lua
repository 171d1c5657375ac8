--- Sentry's REST API operations: which operation a request is, and what it needs.
--
-- The catalogue comes from Sentry's OpenAPI schema through
-- `tools/gen_endpoints.lua`, which writes `sentry.endpoint_data`; this module
-- only builds the lookup. Paths are matched segment by segment through a
-- trie built once at load time. At each segment a literal (`issues`) is tried
-- before a placeholder (`{issue_id}`), and when the literal branch leads
-- nowhere the placeholder branch is tried instead.
--
-- As on Sentry's server, the path decides the operation first and the method
-- is checked afterwards: a known path with an unlisted method does not fall
-- back to another path.
-- @module sentry.endpoints

local API_ROOT = "/api/0/"

local url = require "sentry.url"

-- Split a path below the API root into its segments; a trailing slash is
-- optional. "" is the API root itself and has no segments.
local function split_segments(below_root)
  below_root = below_root:gsub("/$", "")
  local segments = {}
  if below_root == "" then
    return segments
  end
  for segment in (below_root .. "/"):gmatch("([^/]*)/") do
    segments[#segments + 1] = segment
  end
  return segments
end

-- The part of a request path below the API root, without the query string
-- or fragment; nil when an absolute URL does not point into an API root.
-- Absolute URLs may carry a prefix before /api/0/ (self-hosted installs
-- served under a sub-path); relative paths may start with "/api/0/" or not.
local function path_below_root(path)
  path = path:match("^[^?#]*")
  local scheme, _, after_authority = url.parts(path)
  if scheme then
    local _, root_end = after_authority:find(API_ROOT, 1, true)
    if root_end then
      return after_authority:sub(root_end + 1)
    end
    if after_authority:sub(-(#API_ROOT - 1)) == API_ROOT:sub(1, -2) then
      return ""
    end
    return nil
  end
  path = path:gsub("^/", "")
  if path == "api/0" then
    return ""
  end
  if path:sub(1, #API_ROOT - 1) == API_ROOT:sub(2) then
    return path:sub(#API_ROOT)
  end
  return path
end

local function placeholder_name(segment)
  return segment:match("^{(.+)}$")
end

local function new_node()
  return { literals = {}, placeholder = nil, operations = nil }
end

-- Walk from `node` through `segments` (percent-decoded) starting at `index`
-- and return the node of an operation path, preferring literal segments and
-- backtracking to the placeholder when the literal branch dead-ends.
local function find_node(node, segments, index)
  if index > #segments then
    return node.operations and node or nil
  end
  local segment = segments[index]
  if segment == "" then
    return nil -- "a//b": an empty segment names nothing
  end
  local literal_child = node.literals[segment]
  if literal_child then
    local found = find_node(literal_child, segments, index + 1)
    if found then
      return found
    end
  end
  if node.placeholder then
    return find_node(node.placeholder, segments, index + 1)
  end
  return nil
end

-- A fresh public description of an operation, so callers may change it freely.
local function describe_operation(operation)
  local scopes = {}
  for index, scope in ipairs(operation.scopes) do
    scopes[index] = scope
  end
  return {
    operation_id = operation.operation_id,
    method = operation.method,
    template = operation.template,
    scopes = scopes,
    paginated = operation.paginated,
    dsn_allowed = operation.dsn_allowed,
  }
end

local function sorted_methods(operations)
  local methods = {}
  for method in pairs(operations) do
    methods[#methods + 1] = method
  end
  table.sort(methods)
  return methods
end

local function check_string(value, position, function_name)
  if type(value) ~= "string" then
    error(("bad argument #%d to '%s' (string expected, got %s)")
      :format(position, function_name, type(value)), 3)
  end
end

-- Turn a data row { method, template, operation_id, scopes, paginated =,
-- dsn_allowed = } into an operation; raise on rows that cannot be one.
local function operation_from_row(row, row_number)
  local method, template, operation_id, scopes = row[1], row[2], row[3], row[4]
  if type(method) ~= "string" or type(template) ~= "string" or type(operation_id) ~= "string"
      or type(scopes) ~= "table" then
    error(("endpoint row %d: expected { method, template, operation_id, scopes }")
      :format(row_number), 3)
  end
  if template:sub(1, #API_ROOT) ~= API_ROOT then
    error(("endpoint row %d: template '%s' does not start with %s")
      :format(row_number, template, API_ROOT), 3)
  end
  return {
    method = method:upper(),
    template = template,
    operation_id = operation_id,
    scopes = scopes,
    paginated = row.paginated == true,
    dsn_allowed = row.dsn_allowed == true,
    segments = split_segments(template:sub(#API_ROOT + 1)),
  }
end

--- Build a catalogue from rows shaped like those of `sentry.endpoint_data`.
-- The module itself is such a catalogue, built from Sentry's operations.
-- @param rows array of { method, template, operation_id, scopes,
--   paginated = bool, dsn_allowed = bool }
-- @return a catalogue with the functions `match`, `list` and `by_operation_id`
-- @function new
local function new(rows)
  if type(rows) ~= "table" then
    error(("bad argument #1 to 'new' (table expected, got %s)"):format(type(rows)), 2)
  end
  local catalogue = {}
  local root = new_node()
  local operations, by_id = {}, {}

  for row_number, row in ipairs(rows) do
    local operation = operation_from_row(row, row_number)
    if by_id[operation.operation_id] then
      error(("endpoint row %d: duplicate operation id '%s'")
        :format(row_number, operation.operation_id), 2)
    end
    local node = root
    for _, segment in ipairs(operation.segments) do
      if placeholder_name(segment) then
        node.placeholder = node.placeholder or new_node()
        node = node.placeholder
      else
        node.literals[segment] = node.literals[segment] or new_node()
        node = node.literals[segment]
      end
    end
    node.operations = node.operations or {}
    if node.operations[operation.method] then
      error(("endpoint row %d: %s %s is listed twice")
        :format(row_number, operation.method, operation.template), 2)
    end
    node.operations[operation.method] = operation
    operations[#operations + 1] = operation
    by_id[operation.operation_id] = operation
  end

  --- Find the operation a request would reach.
  -- @param method HTTP method, any case
  -- @param path "/organizations/acme/projects/", "organizations/acme/projects",
  --   "/api/0/organizations/acme/projects/" or an absolute URL such as
  --   "https://sentry.io/api/0/organizations/acme/projects/?cursor=x";
  --   the query string and fragment are ignored, a trailing slash is optional
  -- @return { operation_id, method, template, scopes (any one suffices),
  --   paginated, dsn_allowed, params (placeholder name -> percent-decoded
  --   value) }, or nil and a message saying why nothing matched
  -- @function match
  function catalogue.match(method, path)
    check_string(method, 1, "match")
    check_string(path, 2, "match")
    method = method:upper()
    local below_root = path_below_root(path)
    if not below_root then
      return nil, ("not a Sentry API URL: %s"):format(path)
    end
    local raw_segments = split_segments(below_root)
    local segments = {}
    for index, segment in ipairs(raw_segments) do
      segments[index] = url.decode(segment)
    end
    local node = find_node(root, segments, 1)
    if not node then
      return nil, ("no known Sentry API operation at %s"):format(path)
    end
    local operation = node.operations[method]
    if not operation then
      return nil, ("%s is not a known method for %s (known: %s)")
        :format(method, path, table.concat(sorted_methods(node.operations), ", "))
    end
    local result = describe_operation(operation)
    result.params = {}
    for index, segment in ipairs(operation.segments) do
      local name = placeholder_name(segment)
      if name then
        result.params[name] = segments[index]
      end
    end
    return result
  end

  --- List every operation in row order (the generated data is sorted by
  -- template, then method).
  -- @return a fresh array of operation descriptions (as `match` returns,
  --   without `params`)
  -- @function list
  function catalogue.list()
    local list = {}
    for index, operation in ipairs(operations) do
      list[index] = describe_operation(operation)
    end
    return list
  end

  --- Find an operation by its operation id.
  -- @param operation_id string, such as "listOrganizationProjects"
  -- @return the operation's description, or nil and an error message
  -- @function by_operation_id
  function catalogue.by_operation_id(operation_id)
    check_string(operation_id, 1, "by_operation_id")
    local operation = by_id[operation_id]
    if not operation then
      return nil, ("unknown operation id: %s"):format(operation_id)
    end
    return describe_operation(operation)
  end

  return catalogue
end

local endpoints = new(require "sentry.endpoint_data")
endpoints.new = new
return endpoints
