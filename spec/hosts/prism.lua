-- Helpers for spec/hosts/prism, run with a plain Lua and the built core:
--
--   lua5.4 spec/hosts/prism.lua prepare SCHEMA OUT
--     writes the schema Prism mocks: SCHEMA with one fault repaired (see
--     repair_schema), and prints what was repaired
--   lua5.4 spec/hosts/prism.lua check SCHEMA PRISM_URL TOKEN
--     walks every operation of SCHEMA, builds a request from it (path
--     parameters and required query parameters from their schemas, a body with
--     every required field and every array field present but empty, sent as
--     sentry.array {}), sends it with the client to Prism (started with
--     --errors), and prints "ok - ..." or "not ok - ..." (with Prism's reasons
--     indented) per check; exits 1 when a check failed.
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

-- allOf with its siblings, as one schema.
local function flatten(schema)
  if not schema.allOf then return schema end
  local merged = {}
  for key, value in pairs(schema) do
    if key ~= "allOf" then merged[key] = value end
  end
  for _, part in ipairs(schema.allOf) do
    for key, value in pairs(flatten(part)) do
      if merged[key] == nil then merged[key] = value end
    end
  end
  return merged
end

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

-- The request options for one operation, and the empty arrays its body holds.
local function build_request(operation, shared_parameters)
  local opts = { params = {}, query = {} }
  local arrays = {}
  local parameters = {}
  for _, list in ipairs { shared_parameters or {}, operation.parameters or {} } do
    for _, parameter in ipairs(list) do parameters[#parameters + 1] = parameter end
  end
  for _, parameter in ipairs(parameters) do
    local where = parameter["in"] .. " " .. parameter.name
    if parameter["in"] == "path" then
      opts.params[parameter.name] = example_value(parameter.schema or {}, where, {})
    elseif parameter["in"] == "query" and parameter.required then
      opts.query[parameter.name] = example_value(parameter.schema or {}, where, {}, true)
    end
  end
  local body = operation.requestBody
  if body then
    local json_body = body.content["application/json"]
    local form = body.content["multipart/form-data"]
    if json_body then
      opts.body = example_value(json_body.schema, "body", arrays)
    elseif form then
      local content_type
      opts.body, content_type = multipart_body(flatten(form.schema))
      opts.headers = { ["Content-Type"] = content_type }
    end
  end
  return opts, arrays
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

local client = assert(sentry.new {
  token = token, base_url = prism_url, config = false, max_retries = 0, log = function() end,
})

-- The check can fail: Prism must refuse a wrong body, or its acceptance
-- proves nothing. With empty arrays, the same body with {} in their place
-- (what a Lua table said before sentry.array); else a body of the wrong type.
local function check_refuses_wrong_body(name, method, path, opts, arrays)
  local wrong_body, what = '"not an object"', "a string as the body"
  if #arrays > 0 then
    wrong_body, what = unmarked(opts.body), "the same body with {} in place of []"
  end
  local res, err = client:request(method, path, {
    params = opts.params, query = opts.query, headers = opts.headers, body = wrong_body })
  local reasons = err and violations(err) or ""
  -- Prism names each field: "Request body property permissions.teams_with_edit_access must be array"
  local expected = { "must be object" }
  if #arrays > 0 then
    expected = {}
    for i, where in ipairs(arrays) do expected[i] = "property " .. where:gsub("^body%.", "") .. " must be array" end
  end
  local missing = {}
  for _, message in ipairs(expected) do
    if not reasons:find(message, 1, true) then missing[#missing + 1] = message end
  end
  report(not res and #missing == 0, name .. " refuses " .. what,
    res and "accepted (" .. res.status .. ")" or "no \"" .. table.concat(missing, "\", \"") .. "\" in: " .. reasons)
end

local schema = cjson.decode((read_file(schema_file)))
local total, accepted, with_empty_arrays, empty_arrays = 0, 0, 0, 0
for _, path in ipairs(sorted_keys(schema.paths)) do
  local item = schema.paths[path]
  for _, method in ipairs(METHODS) do
    local operation = item[method]
    if operation then
      total = total + 1
      local name = method:upper() .. " " .. path
      local built, opts, arrays = pcall(build_request, operation, item.parameters)
      local res, err
      if built then
        res, err = client:request(method, path, opts)
      else
        err, arrays = opts, {}
      end
      if res then accepted = accepted + 1 end
      if res and #arrays > 0 then
        with_empty_arrays, empty_arrays = with_empty_arrays + 1, empty_arrays + #arrays
      end
      local with_arrays = #arrays > 0 and " with empty " .. table.concat(arrays, ", ") or ""
      report(res ~= nil, name .. " accepted" .. with_arrays .. (res and " (" .. res.status .. ")" or ""),
        err and (built and violations(err) or err))
      if res and type(opts.body) == "table" then check_refuses_wrong_body(name, method, path, opts, arrays) end
    end
  end
end

print(string.format("# Prism accepted %d of %d operations, %d of them with %d array fields sent empty",
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
