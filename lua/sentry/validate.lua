--- Checks a value against a reduced schema node of `sentry.operation_data`
-- (type, enum, nullable, items, properties, required, open, any_of, bounds),
-- by the rules the value will be sent with: tables are arrays or objects as
-- `sentry.json` encodes them (`sentry.array {}` is an empty array, an empty
-- plain table an object).
-- @module sentry.validate
local json = require "sentry.json"
local text = require "sentry.text"

local validate = {}

local MAX_DEPTH = 64
local MAX_LISTED = 12

--- A value as the JSON it becomes: "a string", "an array", "null", ...
-- @param value
-- @treturn string
function validate.describe(value)
  local kind = type(value)
  if value == json.null then return "null" end
  if kind == "table" then return json.table_kind(value) == "array" and "an array" or "an object" end
  if kind == "number" then return value == math.floor(value) and "an integer" or "a number" end
  if kind == "string" or kind == "boolean" then return "a " .. kind end
  return "a " .. kind .. " (not JSON)"
end

--- `" (did you mean 'x'?)"` naming the closest of `names` (see
-- `sentry.text.closest`), else `""`.
-- @param name what was given
-- @tparam table names a set: `{ [name] = anything }`
-- @tparam[opt] string prefix written before the name, e.g. `"body."`
-- @treturn string
function validate.hint(name, names, prefix)
  local best = type(name) == "string" and text.closest(name, names)
  return best and " (did you mean '" .. (prefix or "") .. best .. "'?)" or ""
end

local EXPECTED = {
  string = "a string", integer = "an integer", number = "a number", boolean = "a boolean",
  array = "an array", object = "an object",
}

local function quoted(value)
  if type(value) == "string" then return '"' .. value .. '"' end
  return tostring(value)
end

local function utf8_length(s)
  return select(2, s:gsub("[^\128-\191]", ""))
end

-- Text sent in a URL stands for these types (a query or path value).
local function text_matches(value, expected)
  if expected == "integer" then return value:match("^%-?%d+$") ~= nil end
  if expected == "number" then return tonumber(value) ~= nil end
  if expected == "boolean" then return value == "true" or value == "false" end
  return false
end

local check

local function type_problem(value, schema, where, in_url)
  local expected = schema.type
  local kind = type(value)
  local ok
  if expected == "string" then
    ok = kind == "string" or (in_url and kind == "number")
  elseif expected == "integer" then
    ok = kind == "number" and value == math.floor(value)
  elseif expected == "number" then
    ok = kind == "number"
  elseif expected == "boolean" then
    ok = kind == "boolean"
  elseif expected == "array" then
    ok = kind == "table" and json.table_kind(value) == "array"
  elseif expected == "object" then
    ok = kind == "table" and json.table_kind(value) == "object"
  else
    return nil
  end
  if not ok and in_url and kind == "string" then ok = text_matches(value, expected) end
  if ok then return nil end
  local problem = ("%s: expected %s, got %s"):format(where, EXPECTED[expected], validate.describe(value))
  if expected == "array" and kind == "table" and next(value) == nil then
    problem = problem .. " (an empty table is an object: write sentry.array {})"
  end
  return problem
end

local function enum_problem(value, schema, where, in_url)
  for _, allowed in ipairs(schema.enum) do
    if value == allowed or (in_url and tostring(value) == tostring(allowed)) then return nil end
  end
  local listed, names = {}, {}
  for index, allowed in ipairs(schema.enum) do
    if index <= MAX_LISTED then listed[#listed + 1] = quoted(allowed) end
    names[tostring(allowed)] = true
  end
  if #schema.enum > MAX_LISTED then listed[#listed + 1] = "..." end
  local closest = type(value) == "string" and text.closest(value, names)
  return ("%s: %s is not one of %s%s"):format(where, quoted(value), table.concat(listed, ", "),
    closest and " (did you mean " .. quoted(closest) .. "?)" or "")
end

local function bounds_problem(value, schema, where)
  if type(value) == "string" then
    local length = utf8_length(value)
    if schema.minLength and length < schema.minLength then
      return ("%s: at least %d characters, got %d"):format(where, schema.minLength, length)
    end
    if schema.maxLength and length > schema.maxLength then
      return ("%s: at most %d characters, got %d"):format(where, schema.maxLength, length)
    end
  elseif type(value) == "number" then
    if schema.minimum and value < schema.minimum then
      return ("%s: at least %s, got %s"):format(where, quoted(schema.minimum), quoted(value))
    end
    if schema.maximum and value > schema.maximum then
      return ("%s: at most %s, got %s"):format(where, quoted(schema.maximum), quoted(value))
    end
  elseif type(value) == "table" and schema.maxItems and #value > schema.maxItems then
    return ("%s: at most %d items, got %d"):format(where, schema.maxItems, #value)
  end
  return nil
end

-- snake_case <-> camelCase: Sentry's serializers take either spelling.
local function other_spelling(name)
  if name:find("_", 1, true) then
    return (name:gsub("_(%l)", function(letter) return letter:upper() end))
  end
  return (name:gsub("(%u)", function(letter) return "_" .. letter:lower() end))
end

local function property_for(schema, name)
  local property = schema.properties[name]
  if property then return property, name end
  local other = other_spelling(name)
  return schema.properties[other], other
end

local function object_problem(value, schema, where, depth)
  local given = {}
  for key, item in pairs(value) do
    if type(key) ~= "string" then
      return ("%s: object keys must be strings, got %s"):format(where, validate.describe(key))
    end
    local property, name = property_for(schema, key)
    if property then
      given[name] = true
      local problem = check(item, property, where .. "." .. key, false, depth + 1)
      if problem then return problem end
    elseif not schema.open then
      return ("%s.%s: unknown field%s"):format(where, key, validate.hint(key, schema.properties, where .. "."))
    end
  end
  for _, name in ipairs(schema.required or {}) do
    if not given[name] then return ("%s.%s: missing (required)"):format(where, name) end
  end
  return nil
end

-- Returns what is wrong with `value`, naming its place, or nil.
check = function(value, schema, where, in_url, depth)
  if depth > MAX_DEPTH then
    return ("%s: nested more than %d levels deep (a table that contains itself?)"):format(where, MAX_DEPTH)
  end
  if value == json.null then
    if schema.nullable or not schema.type then return nil end
    return ("%s: expected %s, got null"):format(where, EXPECTED[schema.type] or "a value")
  end
  if schema.any_of then
    local problems = {}
    for _, alternative in ipairs(schema.any_of) do
      local problem = check(value, alternative, where, in_url, depth + 1)
      if not problem then problems = nil break end
      problems[#problems + 1] = problem
    end
    if problems then return table.concat(problems, "; or ") end
  end
  local problem = type_problem(value, schema, where, in_url)
    or (schema.enum and enum_problem(value, schema, where, in_url))
    or bounds_problem(value, schema, where)
  if problem then return problem end
  if type(value) ~= "table" then return nil end
  if schema.items then
    for index = 1, #value do
      problem = check(value[index], schema.items, ("%s[%d]"):format(where, index), in_url, depth + 1)
      if problem then return problem end
    end
  end
  if schema.properties and json.table_kind(value) == "object" then
    return object_problem(value, schema, where, depth)
  end
  return nil
end

--- What is wrong with a value sent as JSON (a request body), or nil.
-- @param value
-- @tparam table schema a reduced schema node
-- @tparam string where the value's name in messages, e.g. `"body"`
-- @treturn ?string `"body.projects: expected an array, got an object ..."`
function validate.json_value(value, schema, where)
  return check(value, schema, where, false, 1)
end

--- What is wrong with a value sent in the URL (a path or query
-- parameter), or nil: text that reads as the type is accepted
-- (`"123"` for an integer), and a query array may be one value.
-- @param value
-- @tparam table schema a reduced schema node
-- @tparam string where e.g. `"query.status"`
-- @treturn ?string
function validate.url_value(value, schema, where)
  if schema.type == "array" and type(value) ~= "table" then
    return check(value, schema.items or {}, where, true, 1)
  end
  if schema.type == "array" and type(value) == "table" then
    for key in pairs(value) do
      if type(key) ~= "number" then
        return ("%s: expected a list of values, got %s"):format(where, validate.describe(value))
      end
    end
    for index = 1, #value do
      local problem = check(value[index], schema.items or {}, ("%s[%d]"):format(where, index), true, 1)
      if problem then return problem end
    end
    return nil
  end
  if type(value) == "table" then
    return ("%s: expected %s, got %s"):format(where, EXPECTED[schema.type] or "one value",
      validate.describe(value))
  end
  return check(value, schema, where, true, 1)
end

return validate
