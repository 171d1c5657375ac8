--- Every Sentry operation by name, checked against the schema before it is sent.
--
--     local res, err = client.api.updateOrganizationIssue { issue_id = "123", body = { status = "resolved" } }
--     for project in client.api.listOrganizationProjects:each { limit = 250 } do print(project.slug) end
--     print(sentry.api.describe("listOrganizationProjects").path)
--
-- Names are Sentry's operationIds (the names of its API docs and of
-- `@sentry/api`); the few that Sentry writes as sentences ("List a
-- Project's Issues") are in camel case (`listAProjectsIssues`). The list:
-- OPERATIONS.md, or `sentry.api.list()`.
--
-- **Arguments** (one table):
--
-- - the path parameters by their schema names (`issue_id = "123"`);
--   `organization_id_or_slug` and `project_id_or_slug` default to the
--   client's `org` and `project`
-- - `query`: the query parameters (a list repeats the key: `{ project = { 1, 2 } }`)
-- - `body`: the JSON body (a table; `sentry.array {}` is an empty array).
--   For the two multipart uploads, the encoded body as a string, with
--   `headers = { ["Content-Type"] = "multipart/form-data; boundary=..." }`
-- - `headers`, `timeout`: as for `client:request`
-- - `validate = false`: send without checking (the path must still be filled)
-- - for `:each`, `:pages` and `:collect` also `limit`, `max_pages`, `cursor`,
--   `per_page`, `prefetch` (see `sentry.paginate`)
--
-- **Checks** before anything is sent: every path parameter is given; query
-- parameters and body fields are known to the schema (a wrong name gets the
-- closest right one: "did you mean ..."), required ones present, and each
-- value has the schema's type, one of its enum values and within its bounds.
-- A body field's name may also be written in the other case style
-- (`dateReleased` for `date_released`), as Sentry's serializers accept both. A
-- wrong call returns `nil, err` of kind `"invalid"` whose detail names the
-- place: `body.projects: expected an array, got an object (an empty table is
-- an object: write sentry.array {})`. The operation's scopes serve
-- `check_scopes` and the scopes named in a 403 error.
--
-- Nothing here is loaded until a program first touches `client.api` or
-- `sentry.api`; the schema data loads on the first call or `describe`.
-- @module sentry.api
local endpoints = require "sentry.endpoints"
local errors = require "sentry.errors"
local url = require "sentry.url"
local validate = require "sentry.validate"

local api = {}

-- The generated data, loaded on first use; and the operation names, sorted.
local data, names, by_schema_id

local function operation_data()
  if not data then
    data = require "sentry.operation_data"
    names, by_schema_id = {}, {}
    for name, entry in pairs(data) do
      names[#names + 1] = name
      if entry.operation_id then by_schema_id[entry.operation_id] = name end
    end
    table.sort(names)
  end
  return data
end

-- The keys of an argument table that are not parameters.
local CALL_OPTIONS = { body = true, query = true, headers = true, timeout = true, validate = true }
local WALK_OPTIONS = { limit = true, max_pages = true, cursor = true, per_page = true, prefetch = true }
-- Query parameters a walk sets itself.
local WALK_QUERY = { cursor = true, per_page = true }

-- An operation: the data entry, the catalogue's method, path and scopes.
local function find(name)
  if type(name) ~= "string" then
    error(("bad argument #1 (operation name must be a string, got %s)"):format(type(name)), 3)
  end
  local entries = operation_data()
  local lua_name = entries[name] and name or by_schema_id[name]
  if not lua_name then
    return nil, errors.invalid(("unknown operation '%s'%s; sentry.api.list() names them all")
      :format(name, validate.hint(name, entries)))
  end
  local entry = entries[lua_name]
  local endpoint = assert(endpoints.by_operation_id(entry.operation_id or lua_name))
  return { name = lua_name, entry = entry, endpoint = endpoint }
end

local function copy_schema(node)
  if type(node) ~= "table" then return node end
  local copy = {}
  for key, value in pairs(node) do copy[key] = copy_schema(value) end
  return copy
end

--- Describe an operation.
-- @tparam string name its name (or Sentry's operationId)
-- @treturn ?table `{ name, operation_id, method, path, scopes (any one
--   suffices), paginated, summary, docs (link), deprecated, parameters =
--   { { name, ["in"] = "path"|"query", required, type, enum, items, ... } },
--   body (the JSON body's schema, reduced), multipart }`
-- @treturn ?table err (kind "invalid") for an unknown name, with the closest one
function api.describe(name)
  local operation, err = find(name)
  if not operation then return nil, err end
  local entry, endpoint = operation.entry, operation.endpoint
  local parameters = {}
  for index, param in ipairs(entry.params) do
    local described = copy_schema(param)
    described[1], described[2] = nil, nil
    described.name, described["in"] = param[2], param[1]
    described.required = param.required == true
    parameters[index] = described
  end
  return {
    name = operation.name, operation_id = endpoint.operation_id, method = endpoint.method,
    path = endpoint.template, scopes = endpoint.scopes, paginated = endpoint.paginated,
    summary = entry.summary, docs = entry.docs, deprecated = entry.deprecated == true,
    parameters = parameters, body = copy_schema(entry.body), multipart = entry.multipart == true,
  }
end

--- The names of every operation, sorted.
-- @treturn table
function api.list()
  operation_data()
  local list = {}
  for index, name in ipairs(names) do list[index] = name end
  return list
end

local function invalid(operation, problem)
  return errors.invalid(operation.name .. ": " .. problem)
end

-- The path parameters' values, or nil and what is wrong.
local function path_values(operation, client, args)
  local values = {}
  for _, param in ipairs(operation.entry.params) do
    local place, name = param[1], param[2]
    if place == "path" then
      local value, alias = url.param_value(name, args, client)
      if value == nil then
        local hint = alias and (" or set %s in sentry.new"):format(alias) or ""
        return nil, ("%s: missing path parameter (pass %s = ...%s)"):format(name, name, hint)
      end
      local problem = args.validate ~= false and validate.url_value(value, param, name)
      if problem then return nil, problem end
      values[name] = value
    end
  end
  return values
end

-- The names of the parameters in one place ("path", "query"), as a set.
local function names_in(operation, place)
  local set = {}
  for _, param in ipairs(operation.entry.params) do
    if param[1] == place then set[param[2]] = true end
  end
  return set
end

-- What is wrong with the argument table's own keys, or nil.
local function keys_problem(operation, args, walking)
  for key in pairs(args) do
    if type(key) ~= "string" then
      return ("arguments must be named, got a %s key"):format(type(key))
    end
    local known = CALL_OPTIONS[key] or (walking and WALK_OPTIONS[key])
    if not known then
      local is_path = false
      for _, param in ipairs(operation.entry.params) do
        if param[2] == key and param[1] == "path" then is_path = true end
        if param[2] == key and param[1] == "query" then
          return ("%s is a query parameter: pass query = { %s = ... }"):format(key, key)
        end
      end
      if not is_path then
        local candidates = names_in(operation, "path")
        for option in pairs(CALL_OPTIONS) do candidates[option] = true end
        if walking then for option in pairs(WALK_OPTIONS) do candidates[option] = true end end
        return ("unknown argument '%s'%s"):format(key, validate.hint(key, candidates))
      end
    end
  end
  return nil
end

local function query_problem(operation, query, walking)
  if query == nil then query = {} end
  if type(query) ~= "table" then return ("query: expected a table, got %s"):format(validate.describe(query)) end
  local by_name = {}
  for _, param in ipairs(operation.entry.params) do
    if param[1] == "query" then by_name[param[2]] = param end
  end
  for key, value in pairs(query) do
    local param = by_name[key]
    if param then
      local problem = validate.url_value(value, param, "query." .. key)
      if problem then return problem end
    elseif not (walking or operation.endpoint.paginated) or not WALK_QUERY[key] then
      if next(by_name) == nil then
        return ("query.%s: this operation takes no query parameters"):format(tostring(key))
      end
      return ("query.%s: unknown query parameter%s"):format(tostring(key), validate.hint(key, by_name, "query."))
    end
  end
  for name, param in pairs(by_name) do
    if param.required and query[name] == nil then
      return ("query.%s: missing (required)"):format(name)
    end
  end
  return nil
end

local function body_problem(operation, body)
  local entry = operation.entry
  if entry.multipart then
    if body ~= nil and type(body) ~= "string" then
      return "body: this operation takes a multipart/form-data body: pass it encoded, as a string, "
        .. "with headers = { [\"Content-Type\"] = \"multipart/form-data; boundary=...\" }"
    end
    return nil
  end
  if not entry.body then
    if body ~= nil then return "body: this operation takes no body" end
    return nil
  end
  if body == nil then
    if entry.body_required or entry.body.required then return "body: missing (required)" end
    return nil
  end
  if type(body) == "string" then return nil end -- already JSON text: the caller's to vouch for
  return validate.json_value(body, entry.body, "body")
end

-- The request options for a call, or nil and err; `level` points a wrong
-- argument type at the caller's line.
local function prepare(operation, client, args, walking, level)
  if args == nil then args = {} end
  if type(args) ~= "table" then
    error(("bad argument to '%s' (arguments must be a table, got %s)"):format(operation.name, type(args)), level)
  end
  local checking = args.validate ~= false
  local problem = checking and keys_problem(operation, args, walking)
  if problem then return nil, invalid(operation, problem) end
  local params, path_problem = path_values(operation, client, args)
  if not params then return nil, invalid(operation, path_problem) end
  if checking then
    problem = query_problem(operation, args.query, walking) or body_problem(operation, args.body)
    if problem then return nil, invalid(operation, problem) end
  end
  local opts = { params = params, query = args.query, body = args.body, headers = args.headers,
    timeout = args.timeout }
  if walking then
    for option in pairs(WALK_OPTIONS) do opts[option] = args[option] end
  end
  return opts
end

--- An operation bound to a client: `client.api.<name>`. Call it (`op { ... }`,
-- returning `res, err` as `client:request`) or walk it with the methods below.
-- @section Operation

local Operation = {}
Operation.__index = Operation

function Operation:__tostring()
  if not self.operation then return "sentry operation " .. self.name .. " (unknown)" end
  local endpoint = self.operation.endpoint
  return ("sentry operation %s (%s %s)"):format(self.name, endpoint.method, endpoint.template)
end

-- One request: `client.api.name { ... }` -> res, err as from client:request.
function Operation:__call(args)
  if not self.operation then return nil, self.missing end
  local opts, err = prepare(self.operation, self.client, args, false, 3)
  if not opts then return nil, err end
  local endpoint = self.operation.endpoint
  return self.client:_call(endpoint.method, endpoint.template, opts, endpoint)
end

-- The walk's options, or nil and err (unknown or unpaginated operation, bad arguments).
local function walk_options(self, args)
  if not self.operation then return nil, self.missing end
  local endpoint = self.operation.endpoint
  if endpoint.method ~= "GET" or not endpoint.paginated then
    return nil, invalid(self.operation, "this operation is not paginated: call it as client.api."
      .. self.name .. " { ... }")
  end
  local opts, err = prepare(self.operation, self.client, args, true, 4) -- not a tail call: level 4 is the caller
  return opts, err
end

--- `for item in client.api.name:each { ... }`: the items of a paginated
-- operation, one at a time, as `client:paginate`; raises the error object
-- (bad arguments included) like the other iterators.
-- @tparam[opt] table args the operation's arguments and `limit`, `max_pages`,
--   `cursor`, `per_page`, `prefetch`
-- @function Operation:each
function Operation:each(args)
  local opts, err = walk_options(self, args)
  if not opts then error(err, 2) end
  return self.client:paginate(self.operation.endpoint.template, opts)
end

--- `for page, res in client.api.name:pages { ... }`: as `client:pages`.
-- @tparam[opt] table args as for `each`
-- @function Operation:pages
function Operation:pages(args)
  local opts, err = walk_options(self, args)
  if not opts then error(err, 2) end
  return self.client:pages(self.operation.endpoint.template, opts)
end

--- `local items, err, state = client.api.name:collect { ... }`: as
-- `client:collect`; never raises for a run-time failure.
-- @tparam[opt] table args as for `each`
-- @treturn ?table items
-- @treturn ?table err
-- @treturn ?table state `{ cursor, done, ... }` to resume with `cursor = state.cursor`
-- @function Operation:collect
function Operation:collect(args)
  local opts, err = walk_options(self, args)
  if not opts then return nil, err, { done = false } end
  return self.client:collect(self.operation.endpoint.template, opts)
end

--- The operation's description, as `sentry.api.describe`.
-- @function Operation:describe
function Operation:describe()
  if not self.operation then return nil, self.missing end
  return api.describe(self.name)
end

--- The operation `name` bound to a client: what `client.api.name` is.
-- Unknown names give an operation whose calls return the error.
-- @param client a client from `sentry.new`
-- @tparam table namespace the client's `api` table, where it is remembered
-- @tparam string name
-- @return the operation
function api.operation(client, namespace, name)
  local operation, err = find(name)
  local bound = setmetatable({ client = client, name = name, operation = operation, missing = err }, Operation)
  if operation then rawset(namespace, name, bound) end
  return bound
end

return api
