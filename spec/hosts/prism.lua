-- Helpers for spec/hosts/prism, run with a plain Lua and the built core:
--
--   lua5.4 spec/hosts/prism.lua prepare SCHEMA OUT
--     writes the schema Prism mocks: SCHEMA with one fault repaired (see
--     repair_schema), and prints what was repaired
--   lua5.4 spec/hosts/prism.lua check SCHEMA PRISM_URL TOKEN
--     walks every operation of SCHEMA and calls it by name through
--     client.api (sentry.api), with arguments built from its schema (path
--     parameters and required query parameters from their schemas, a body with
--     every required field and every array field present but empty, sent as
--     sentry.array {}); the operation layer's own check must pass them and
--     Prism (started with --errors) must accept them and answer JSON that
--     decodes. Then deliberately broken calls, sent with validate = false,
--     must be refused by Prism and, checked, by the operation layer. Prints
--     "ok - ..." or "not ok - ..." (with the reasons indented) per check;
--     exits 1 when a check failed.
local mode = arg[1]
if not ((mode == "prepare" and arg[3]) or (mode == "check" and arg[4])) then
  io.stderr:write("usage: lua spec/hosts/prism.lua prepare SCHEMA OUT\n"
    .. "       lua spec/hosts/prism.lua check SCHEMA PRISM_URL TOKEN\n")
  os.exit(2)
end

local cjson = require "cjson"
local sentry = require "sentry"
local json = require "sentry.json"

local function read_file(path)
  local file = assert(io.open(path, "rb"))
  return assert(file:read("*a")), file:close()
end

-- Sentry's schema lists null among the values of some nullable enums
-- (substatus, widget_type, ...). Prism adds null again when it turns
-- `nullable` into JSON Schema; the repeated item makes the schema invalid,
-- and Prism then checks no body at all for those operations (both dashboard
-- and both issue updates) and accepts anything. Dropping the listed null
-- changes nothing a server accepts (`nullable` still allows it) and lets
-- Prism check those bodies too.
local function repair_schema(node, where, repaired)
  if type(node) ~= "table" then return end
  if node.nullable == true and type(node.enum) == "table" then
    local kept = {}
    for _, value in ipairs(node.enum) do
      if value ~= json.null then kept[#kept + 1] = value end
    end
    if #kept < #node.enum then
      node.enum = kept
      repaired[#repaired + 1] = where
    end
  end
  for key, value in pairs(node) do repair_schema(value, where .. "/" .. tostring(key), repaired) end
end

if mode == "prepare" then
  local schema = assert(json.decode((read_file(arg[2]))))
  local repaired = {}
  repair_schema(schema, "#", repaired)
  table.sort(repaired)
  local text = assert(json.encode(schema))
  local out = assert(io.open(arg[3], "wb"))
  assert(out:write(text))
  assert(out:close())
  print(string.format("# %d nullable enums listed null as well; null dropped from them, e.g. %s",
    #repaired, repaired[1] or "none"))
  os.exit(0)
end

local schema_file, prism_url, token = arg[2], arg[3], arg[4]

local METHODS = { "get", "post", "put", "patch", "delete" }

-- What the issue measured with generic requests: 220 of 221 operations.
local ISSUE_ACCEPTED = 220

local failures = 0

local function report(ok, description, details)
  if ok then
    print("ok - " .. description)
  else
    failures = failures + 1
    print("not ok - " .. description)
    if details and details ~= "" then print("#   " .. tostring(details):gsub("\n", "\n#   ")) end
  end
end

local function sorted_keys(t)
  local keys = {}
  for key in pairs(t) do keys[#keys + 1] = key end
  table.sort(keys)
  return keys
end

-- Values that match the schema's string patterns and formats.
local BY_PATTERN = {
  ["^[0-9a-f]{32}$"] = string.rep("0123456789abcdef", 2),
  ["^[0-9a-f]{40}$"] = string.rep("0123456789", 4),
  ["^(?![0-9]+$)[a-z0-9_\\-]+$"] = "web",
}
local BY_FORMAT = {
  ["date-time"] = "2024-01-01T00:00:00Z",
  email = "dev@example.com",
  uri = "https://example.com/",
  uuid = "123e4567-e89b-12d3-a456-426614174000",
}

-- Run from the repository's root (the suite does): the generator's reading of the schema.
local operations_generator = assert(loadfile("tools/gen_operations.lua"))()
local flatten = operations_generator.flatten

local function is_array(schema) return schema.type == "array" or schema.items ~= nil end
local function is_object(schema) return schema.type == "object" or schema.properties ~= nil end

-- Does an object schema hold array fields, at any depth of its properties?
local function holds_arrays(schema)
  schema = flatten(schema)
  if is_array(schema) then return true end
  for _, property in pairs(schema.properties or {}) do
    if holds_arrays(property) then return true end
  end
  return false
end

local example_value

-- An object with its required fields, its array fields (empty) and the
-- objects that hold array fields; `arrays` collects the dotted names of the
-- empty arrays sent.
local function example_object(schema, where, arrays)
  local value = {}
  local required = {}
  for _, name in ipairs(schema.required or {}) do required[name] = true end
  for _, name in ipairs(sorted_keys(schema.properties or {})) do
    local property = flatten(schema.properties[name])
    if required[name] or holds_arrays(property) then
      value[name] = example_value(property, where .. "." .. name, arrays)
    end
  end
  return value
end

-- A value that satisfies `schema`. Arrays are empty (sentry.array {}) unless
-- `one_item` asks for one element (a required query parameter needs one).
function example_value(schema, where, arrays, one_item)
  schema = flatten(schema)
  if schema.enum then return schema.enum[1] end
  if schema.default ~= nil and schema.default ~= cjson.null and not is_object(schema)
    and not is_array(schema) then
    return schema.default
  end
  if is_array(schema) then
    if one_item then return { example_value(schema.items or {}, where .. "[]", arrays) } end
    arrays[#arrays + 1] = where
    return sentry.array {}
  end
  if is_object(schema) then return example_object(schema, where, arrays) end
  if schema.type == "integer" or schema.type == "number" then
    return schema.minimum or 1
  end
  if schema.type == "boolean" then return true end
  if schema.pattern then
    return assert(BY_PATTERN[schema.pattern], where .. ": no value for pattern " .. schema.pattern
      .. " (add one to BY_PATTERN)")
  end
  if schema.format and BY_FORMAT[schema.format] then return BY_FORMAT[schema.format] end
  return ("example"):sub(1, schema.maxLength or 7)
end

-- Prism's reasons for refusing a request: in its sl-violations header, or in
-- the problem+json body it makes up when the schema defines no 400 or 422.
local function violations(err)
  local list = type(err.body) == "table" and err.body.validation
  local header = err.headers and err.headers["sl-violations"]
  if not list and header then list = cjson.decode(header) end
  if type(list) ~= "table" then return tostring(err) end
  local lines = {}
  for _, violation in ipairs(list) do
    lines[#lines + 1] = table.concat(violation.location or {}, ".") .. ": " .. tostring(violation.message)
  end
  return tostring(err.status) .. " " .. table.concat(lines, "; ")
end

-- A multipart/form-data body with the required fields, each as a text part
-- (file parts get a filename).
local function multipart_body(schema)
  local boundary = "sentry-lua-prism-check"
  local parts = {}
  for _, name in ipairs(schema.required or {}) do
    local property = flatten(schema.properties[name])
    local filename = property.format == "binary" and '; filename="' .. name .. '.txt"' or ""
    local value = property.format == "binary" and "contents" or tostring(example_value(property, name, {}))
    parts[#parts + 1] = string.format('--%s\r\nContent-Disposition: form-data; name="%s"%s\r\n\r\n%s\r\n',
      boundary, name, filename, value)
  end
  return table.concat(parts) .. "--" .. boundary .. "--\r\n", "multipart/form-data; boundary=" .. boundary
end

-- The arguments of client.api.<name> for one operation (path parameters by
-- name, required query parameters, the body), and the empty arrays its body holds.
local function build_args(operation, shared_parameters)
  local args = { query = {} }
  local arrays = {}
  local parameters = {}
  for _, list in ipairs { shared_parameters or {}, operation.parameters or {} } do
    for _, parameter in ipairs(list) do parameters[#parameters + 1] = parameter end
  end
  for _, parameter in ipairs(parameters) do
    local where = parameter["in"] .. " " .. parameter.name
    if parameter["in"] == "path" then
      args[parameter.name] = example_value(parameter.schema or {}, where, {})
    elseif parameter["in"] == "query" and parameter.required then
      args.query[parameter.name] = example_value(parameter.schema or {}, where, {}, true)
    end
  end
  local body = operation.requestBody
  if body then
    local json_body = body.content["application/json"]
    local form = body.content["multipart/form-data"]
    if json_body then
      args.body = example_value(json_body.schema, "body", arrays)
    elseif form then
      local content_type
      args.body, content_type = multipart_body(flatten(form.schema))
      args.headers = { ["Content-Type"] = content_type }
    end
  end
  return args, arrays
end

-- A copy of a body with every empty array as a plain empty table, which goes
-- out as {}: what a Lua table said before sentry.array.
local function unmarked(value)
  if type(value) ~= "table" then return value end
  if json.is_array(value) and #value == 0 then return {} end
  local copy = {}
  for key, element in pairs(value) do copy[key] = unmarked(element) end
  return setmetatable(copy, getmetatable(value))
end

local function copy_args(args, changes)
  local copy = {}
  for key, value in pairs(args) do copy[key] = value end
  for key, value in pairs(changes) do copy[key] = value end
  return copy
end

-- Requests that left the client: a checked call the operation layer refuses must not add one.
local sent = 0
local client = assert(sentry.new {
  token = token, base_url = prism_url, config = false, max_retries = 0, log = function() end,
  hooks = { on_request = function() sent = sent + 1 end },
})

-- A broken body for an operation that was accepted: with empty arrays, the
-- same body with {} in their place (what a Lua table said before
-- sentry.array); else without a required field; else an array for the object.
-- Returns the body, what it is, what Prism says and what the operation layer says.
local function broken_body(operation_schema, args, arrays)
  if #arrays > 0 then
    local prism_says = {}
    for i, where in ipairs(arrays) do prism_says[i] = "property " .. where:gsub("^body%.", "") .. " must be array" end
    return unmarked(args.body), "the same body with {} in place of []", prism_says, "expected an array, got an object"
  end
  local schema = flatten(operation_schema)
  local required = schema.required and schema.required[1]
  if required then
    local body = copy_args(args.body, {})
    body[required] = nil
    return body, "the body without " .. required, { "must have required property '" .. required .. "'" },
      "body." .. required .. ": missing (required)"
  end
  return sentry.array {}, "an array as the body", { "must be object" }, "body: expected an object, got an array"
end

-- A broken query: a value outside a string enum, else text for an integer.
local function broken_query(operation, args)
  for _, parameter in ipairs(operation.parameters or {}) do
    local schema = flatten(parameter.schema or {})
    if parameter["in"] == "query" and schema.type == "string" and schema.enum then
      return "query." .. parameter.name .. " outside its enum", copy_args(args.query, { [parameter.name] = "not-listed" }),
        "must be equal to one of the allowed values", "is not one of"
    end
  end
  for _, parameter in ipairs(operation.parameters or {}) do
    local schema = flatten(parameter.schema or {})
    if parameter["in"] == "query" and schema.type == "integer" then
      return "query." .. parameter.name .. " as text", copy_args(args.query, { [parameter.name] = "many" }),
        "must be integer", "expected an integer, got a string"
    end
  end
end

-- The operation layer refuses what Prism refuses: the call sent with
-- validate = false must get Prism's refusal naming the fault, and the same
-- call checked must fail with kind "invalid", saying so, and send nothing.
local function check_both_refuse(name, what, args, prism_says, we_say)
  local res, err = client.api[name](copy_args(args, { validate = false }))
  local reasons = err and violations(err) or ""
  local missing = {}
  for _, message in ipairs(prism_says) do
    if not reasons:find(message, 1, true) then missing[#missing + 1] = message end
  end
  report(not res and #missing == 0, name .. ": Prism refuses " .. what,
    res and "accepted (" .. res.status .. ")" or "no \"" .. table.concat(missing, "\", \"") .. "\" in: " .. reasons)
  local before = sent
  res, err = client.api[name](args)
  local message = err and tostring(err) or ""
  report(not res and err.kind == "invalid" and message:find(we_say, 1, true) and sent == before,
    name .. ": the operation layer refuses " .. what .. " before sending",
    res and "sent (" .. res.status .. ")" or message .. (sent ~= before and " (a request was sent)" or ""))
  return not res
end

-- Did the response decode? A JSON response is a table (or a JSON scalar); a
-- body left as text must not claim to be JSON.
local function decoded(res)
  if res.status == 204 or res.body == nil or res.body == "" then return true end
  local content_type = res.headers["content-type"] or ""
  return type(res.body) ~= "string" or not content_type:find("json", 1, true)
end

local schema = cjson.decode((read_file(schema_file)))
local total, accepted, with_empty_arrays, empty_arrays, broken, both_refused = 0, 0, 0, 0, 0, 0
for _, path in ipairs(sorted_keys(schema.paths)) do
  local item = schema.paths[path]
  for _, method in ipairs(METHODS) do
    local operation = item[method]
    if operation then
      total = total + 1
      local name = operations_generator.lua_name(operation.operationId)
      local label = name .. " (" .. method:upper() .. " " .. path .. ")"
      local built, args, arrays = pcall(build_args, operation, item.parameters)
      local res, err
      if built then
        res, err = client.api[name](args)
      else
        err, arrays = args, {}
      end
      local ok = res ~= nil and decoded(res)
      if ok then accepted = accepted + 1 end
      if ok and #arrays > 0 then
        with_empty_arrays, empty_arrays = with_empty_arrays + 1, empty_arrays + #arrays
      end
      local with_arrays = #arrays > 0 and " with empty " .. table.concat(arrays, ", ") or ""
      report(ok, label .. " accepted" .. with_arrays .. (res and " (" .. res.status .. ", JSON decoded)" or ""),
        err and (built and (err.kind == "invalid" and "the operation layer refused: " .. tostring(err)
          or violations(err)) or err) or (res and "the response did not decode"))
      if ok then
        local json_body = operation.requestBody and operation.requestBody.content["application/json"]
        if json_body and type(args.body) == "table" then
          local body, what, prism_says, we_say = broken_body(json_body.schema, args, arrays)
          broken = broken + 1
          if check_both_refuse(name, what, copy_args(args, { body = body }), prism_says, we_say) then
            both_refused = both_refused + 1
          end
        end
        local what, query, prism_says, we_say = broken_query(operation, args)
        if what then
          broken = broken + 1
          if check_both_refuse(name, what, copy_args(args, { query = query }), { prism_says }, we_say) then
            both_refused = both_refused + 1
          end
        end
      end
    end
  end
end

print(string.format("# %d broken calls: Prism and the operation layer both refused %d", broken, both_refused))
print(string.format("# Prism accepted %d of %d operations called by name, %d of them with %d array fields sent empty",
  accepted, total, with_empty_arrays, empty_arrays))
report(accepted == total and accepted >= ISSUE_ACCEPTED,
  string.format("every operation accepted, at least the %d the issue measured (%d of %d)",
    ISSUE_ACCEPTED, accepted, total))

-- The old failure, directly: an empty Lua table is a JSON object, which Prism
-- refuses where the schema wants an array; sentry.array {} is accepted.
local releases = "/api/0/organizations/{organization_id_or_slug}/releases/"
local params = { organization_id_or_slug = "example" }
local res, err = client:request("POST", releases, {
  params = params, body = { version = "1.2.3", projects = sentry.array {} } })
report(res and res.status == 201, "POST " .. releases .. " with projects = sentry.array {} is accepted",
  err and violations(err))
res, err = client:request("POST", releases, { params = params, body = { version = "1.2.3", projects = {} } })
local refusal = err and violations(err) or ""
report(not res and refusal:find("projects must be array", 1, true),
  "the same body with projects = {} is refused by Prism: \"must be array\"",
  res and "accepted (" .. res.status .. ")" or refusal)

client:close()
os.exit(failures == 0 and 0 or 1)
