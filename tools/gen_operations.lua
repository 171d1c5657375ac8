--- Generate the operations' data module and reference from Sentry's OpenAPI schema.
--
-- Usage:
--
--     lua tools/gen_operations.lua data [tools/openapi.json] > lua/sentry/operation_data.lua
--     lua tools/gen_operations.lua reference [tools/openapi.json] > OPERATIONS.md
--
-- The data module holds, per operationId, what checking a call needs: its
-- parameters and request body reduced to types, enums, required names,
-- properties, array items and bounds, plus its summary and documentation
-- link. Method, path, scopes and the paginated flag stay in the endpoint
-- catalogue (tools/endpoints.tsv, through gen_endpoints.lua); this tool
-- refuses a schema whose operations disagree with it, so both describe the
-- same API.
--
-- Loaded with `loadfile` (as the specs do) the file returns its functions
-- instead of running.

local cjson = require "cjson"

local generator = {}

local DEFAULT_SCHEMA = "tools/openapi.json"
local CATALOGUE = "tools/endpoints.tsv"
local METHODS = { "get", "post", "put", "patch", "delete" }
local DOCS_ROOT = "https://docs.sentry.io/api/"
-- Keywords kept from a schema node: what a request is checked against.
local BOUNDS = { "minimum", "maximum", "minLength", "maxLength", "maxItems" }

-- Run from the repository's root, as `make operations` and the specs do.
local endpoints_generator = assert(loadfile("tools/gen_endpoints.lua"))()
local quote = endpoints_generator.quote

local function sorted_keys(t)
  local keys = {}
  for key in pairs(t) do keys[#keys + 1] = key end
  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  return keys
end

--- A schema node with its allOf parts merged in: properties joined,
-- required names joined, other keywords from the first that has them.
-- @param schema a node of the dereferenced schema
-- @return the merged node (the same node when it has no allOf)
local function flatten(schema)
  if not schema.allOf then return schema end
  local merged = {}
  for key, value in pairs(schema) do
    if key ~= "allOf" then merged[key] = value end
  end
  for _, part in ipairs(schema.allOf) do
    part = flatten(part)
    for key, value in pairs(part) do
      if key == "properties" then
        merged.properties = merged.properties or {}
        for name, property in pairs(value) do merged.properties[name] = merged.properties[name] or property end
      elseif key == "required" then
        merged.required = merged.required or {}
        for _, name in ipairs(value) do merged.required[#merged.required + 1] = name end
      elseif merged[key] == nil then
        merged[key] = value
      end
    end
  end
  return merged
end

generator.flatten = flatten

--- Reduce a JSON schema node to what checking a value needs.
-- @param schema a node of the dereferenced schema
-- @return { type, enum, nullable, items, properties, required, open, any_of,
--   and the bounds }, every field optional
function generator.reduce(schema)
  schema = flatten(schema)
  local node = {}
  node.type = schema.type
  if not node.type and schema.properties then node.type = "object" end
  if not node.type and schema.items then node.type = "array" end
  if schema.nullable == true then node.nullable = true end
  if schema.enum then
    local values = {}
    for _, value in ipairs(schema.enum) do
      if value == cjson.null then node.nullable = true else values[#values + 1] = value end
    end
    node.enum = values
  end
  if schema.items then node.items = generator.reduce(schema.items) end
  if schema.properties then
    node.properties = {}
    for name, property in pairs(schema.properties) do node.properties[name] = generator.reduce(property) end
  end
  -- A read-only property is the server's to fill: a request may leave it out.
  local required, seen = {}, {}
  for _, name in ipairs(schema.required or {}) do
    local property = schema.properties and schema.properties[name]
    if not seen[name] and not (property and property.readOnly) then
      required[#required + 1], seen[name] = name, true
    end
  end
  table.sort(required)
  if #required > 0 then node.required = required end
  -- An object is closed when it lists its properties and allows no others.
  if node.type == "object" and (not schema.properties
      or (schema.additionalProperties ~= nil and schema.additionalProperties ~= false)) then
    node.open = true
  end
  local alternatives = schema.anyOf or schema.oneOf
  if alternatives then
    node.any_of = {}
    for index, alternative in ipairs(alternatives) do node.any_of[index] = generator.reduce(alternative) end
  end
  for _, bound in ipairs(BOUNDS) do node[bound] = schema[bound] end
  return node
end

-- "List an Organization's Projects" -> "list-an-organizations-projects", as
-- the pages of docs.sentry.io are named.
local function slug(text)
  return (text:lower():gsub("['’]", ""):gsub("[^%w]+", "-"):gsub("^%-+", ""):gsub("%-+$", ""))
end

local function docs_link(operation)
  local tag = operation.tags and operation.tags[1]
  if not tag then return DOCS_ROOT end
  if not operation.summary then return DOCS_ROOT .. slug(tag) .. "/" end
  return DOCS_ROOT .. slug(tag) .. "/" .. slug(operation.summary) .. "/"
end

--- The Lua name of an operation: its operationId, or for the few that are
-- sentences ("List a Project's Issues") the words in camel case
-- ("listAProjectsIssues").
-- @param operation_id as in the schema
-- @return a Lua identifier
function generator.lua_name(operation_id)
  if operation_id:match("^[%a_][%w_]*$") then return operation_id end
  local words = {}
  for word in operation_id:gsub("['’]", ""):gmatch("%w+") do
    words[#words + 1] = #words == 0 and word:lower() or word:sub(1, 1):upper() .. word:sub(2)
  end
  return table.concat(words)
end

-- One operation's entry: parameters (path first, then query, each in schema
-- order), the request body, summary and docs link.
local function operation_entry(operation, shared_parameters)
  local entry = { summary = operation.summary, docs = docs_link(operation), params = {} }
  if operation.deprecated then entry.deprecated = true end
  local seen = {}
  for _, place in ipairs { "path", "query" } do
    for _, list in ipairs { operation.parameters or {}, shared_parameters or {} } do
      for _, parameter in ipairs(list) do
        if parameter["in"] == place and not seen[place .. parameter.name] then
          seen[place .. parameter.name] = true
          local param = generator.reduce(parameter.schema or {})
          param[1], param[2] = place, parameter.name
          if parameter.required then param.required = true else param.required = nil end
          entry.params[#entry.params + 1] = param
        end
      end
    end
  end
  local body = operation.requestBody
  if body then
    local json_body, form = body.content["application/json"], body.content["multipart/form-data"]
    if json_body then
      entry.body = generator.reduce(json_body.schema or {})
    elseif form then
      entry.multipart = true
    end
    if body.required then entry.body_required = true end
  end
  return entry
end

--- Read the schema's operations and check them against the catalogue.
-- @param schema the decoded OpenAPI document
-- @param catalogue rows from gen_endpoints' parse
-- @return a map operationId -> entry and the sorted list of names; or nil and a problem
function generator.collect(schema, catalogue)
  local by_id = {}
  for _, row in ipairs(catalogue) do by_id[row.operation_id] = row end
  local entries, names = {}, {}
  for _, path in ipairs(sorted_keys(schema.paths)) do
    local item = schema.paths[path]
    for _, method in ipairs(METHODS) do
      local operation = item[method]
      if operation then
        local operation_id = operation.operationId
        if type(operation_id) ~= "string" or not operation_id:match("%a") then
          return nil, ("%s %s: no operationId"):format(method:upper(), path)
        end
        local name = generator.lua_name(operation_id)
        local row = by_id[operation_id]
        if not row or row.method ~= method:upper() or row.path ~= path then
          return nil, ("%s (%s %s) is not in %s with that method and path: run make endpoints from the "
            .. "same schema"):format(name, method:upper(), path, CATALOGUE)
        end
        if entries[name] then return nil, ("two operations are named %s"):format(name) end
        entries[name] = operation_entry(operation, item.parameters)
        if name ~= operation_id then entries[name].operation_id = operation_id end
        names[#names + 1] = name
      end
    end
  end
  if #names ~= #catalogue then
    return nil, ("the schema has %d operations, %s %d: regenerate both from one schema")
      :format(#names, CATALOGUE, #catalogue)
  end
  table.sort(names)
  return entries, names
end

local function is_identifier(key)
  return type(key) == "string" and key:match("^[%a_][%w_]*$") and not key:match("^end$")
    and not key:match("^and$") and not key:match("^or$") and not key:match("^not$")
end

-- Lua source for a value: arrays inline, map keys sorted.
local function render(value)
  local kind = type(value)
  if kind == "string" then return quote(value) end
  if kind == "number" then
    if value == math.floor(value) and math.abs(value) < 2 ^ 53 then return ("%d"):format(value) end
    return ("%.17g"):format(value)
  end
  if kind == "boolean" then return tostring(value) end
  assert(kind == "table", "cannot render a " .. kind)
  local parts = {}
  for _, item in ipairs(value) do parts[#parts + 1] = render(item) end
  for _, key in ipairs(sorted_keys(value)) do
    if not (type(key) == "number" and key >= 1 and key <= #value and key == math.floor(key)) then
      local rendered_key = is_identifier(key) and key or "[" .. render(key) .. "]"
      parts[#parts + 1] = rendered_key .. " = " .. render(value[key])
    end
  end
  if #parts == 0 then return "{}" end
  return "{ " .. table.concat(parts, ", ") .. " }"
end

--- The data module's source.
-- @param entries as returned by collect
-- @param names sorted operation names
-- @param source_name the schema's name, for the header
-- @return Lua source text
function generator.render_data(entries, names, source_name)
  local lines = {
    "-- Generated by tools/gen_operations.lua from " .. source_name .. " (Sentry's OpenAPI",
    "-- schema): " .. #names .. " operations. Do not edit by hand; run `make operations`.",
    "--",
    "-- Per operationId: params (each { in, name, required =, and the schema of its",
    "-- value }), body (the JSON body's schema), multipart, summary, docs, and the",
    "-- schema's operation_id where it is not a Lua name. Schemas keep",
    "-- type, enum, nullable, items, properties, required, open (other properties",
    "-- allowed), any_of and bounds. Method, path and scopes are in sentry.endpoint_data.",
    "-- luacheck: no max line length",
    "return {",
  }
  for _, name in ipairs(names) do
    lines[#lines + 1] = "  " .. name .. " = " .. render(entries[name]) .. ","
  end
  lines[#lines + 1] = "}"
  return table.concat(lines, "\n") .. "\n"
end

--- The reference: one line per operation.
-- @param entries as returned by collect
-- @param names sorted operation names
-- @param catalogue rows from gen_endpoints' parse
-- @param source_name the schema's name, for the header
-- @return Markdown text
function generator.render_reference(entries, names, catalogue, source_name)
  local by_id = {}
  for _, row in ipairs(catalogue) do by_id[generator.lua_name(row.operation_id)] = row end
  local lines = {
    "# Sentry API operations",
    "",
    ("Generated by `tools/gen_operations.lua` from `%s` (%d operations); do not edit, run"):format(
      source_name, #names),
    "`make operations`. Call one as `client.api.<name> { ... }`; paginated ones also as",
    "`client.api.<name>:each { ... }` (README, \"Operations by name\"). `sentry.api.describe(name)`",
    "gives the parameters. Scopes: any one suffices.",
    "",
    "| operation | method | path | scopes | paginated |",
    "|---|---|---|---|---|",
  }
  for _, name in ipairs(names) do
    local row, entry = by_id[name], entries[name]
    local scope_text = #row.scopes > 0 and "`" .. table.concat(row.scopes, "` `") .. "`" or "none"
    lines[#lines + 1] = ("| [%s](%s) | %s | `%s` | %s | %s |"):format(name, entry.docs, row.method,
      row.path, scope_text, row.paginated and "yes" or "no")
  end
  return table.concat(lines, "\n") .. "\n"
end

local function read_all(path)
  local file, err = io.open(path, "rb")
  if not file then return nil, err end
  local text = file:read("*a")
  file:close()
  return text
end

--- Run the generator as a command.
-- @param argv `data|reference [schema]`
-- @param stdout file handle receiving the output
-- @param stderr file handle receiving error messages
-- @return exit status: 0 on success, 1 on failure
function generator.main(argv, stdout, stderr)
  local mode, schema_path = argv[1], argv[2] or DEFAULT_SCHEMA
  if (mode ~= "data" and mode ~= "reference") or #argv > 2 then
    stderr:write("usage: lua tools/gen_operations.lua data|reference [openapi.json]\n")
    return 1
  end
  local function fail(problem)
    stderr:write("gen_operations: ", tostring(problem), "\n")
    return 1
  end
  local schema_text, read_err = read_all(schema_path)
  if not schema_text then return fail(read_err) end
  local decoded, schema = pcall(cjson.decode, schema_text)
  if not decoded or type(schema) ~= "table" or type(schema.paths) ~= "table" then
    return fail(schema_path .. ": not an OpenAPI document with paths")
  end
  local table_text, table_err = read_all(CATALOGUE)
  if not table_text then return fail(table_err) end
  local catalogue, parse_err = endpoints_generator.parse(table_text, CATALOGUE)
  if not catalogue then return fail(parse_err) end
  local entries, names = generator.collect(schema, catalogue)
  if not entries then return fail(names) end
  local source_name = endpoints_generator.display_name(schema_path)
  if mode == "data" then
    stdout:write(generator.render_data(entries, names, source_name))
  else
    stdout:write(generator.render_reference(entries, names, catalogue, source_name))
  end
  return 0
end

-- Run only when started as a script, not when loaded by a spec.
if arg and type(arg[0]) == "string" and arg[0]:match("gen_operations%.lua$") then
  os.exit(generator.main(arg, io.stdout, io.stderr))
end

return generator
