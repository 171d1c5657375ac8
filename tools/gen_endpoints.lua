--- Generate the endpoint catalogue's data module from Sentry's operation table.
--
-- Usage: `lua tools/gen_endpoints.lua [tools/endpoints.tsv] > lua/sentry/endpoint_data.lua`
--
-- The table has a header line and one tab-separated line per operation:
-- method, path, operation_id, any_of_scopes (comma-separated; any one
-- suffices), paginated (yes/no), dsn_allowed (yes/no). The generated module
-- returns one row per operation, sorted by path and method, so the output
-- depends only on the table's content and not on its line order.
--
-- Loaded with `loadfile` (as the specs do) the file returns its functions
-- instead of running.

local generator = {}

local DEFAULT_INPUT = "tools/endpoints.tsv"
local COLUMNS = { "method", "path", "operation_id", "any_of_scopes", "paginated", "dsn_allowed" }
-- Methods in the order rows for one path are listed.
local METHOD_ORDER = { GET = 1, POST = 2, PUT = 3, PATCH = 4, DELETE = 5, HEAD = 6, OPTIONS = 7 }
local API_ROOT = "/api/0/"

-- Split a line on tabs, keeping empty fields.
local function split_tabs(line)
  local fields = {}
  for field in (line .. "\t"):gmatch("([^\t]*)\t") do
    fields[#fields + 1] = field
  end
  return fields
end

local function split_commas(text)
  local items = {}
  for item in text:gmatch("[^,]+") do
    items[#items + 1] = item:match("^%s*(.-)%s*$")
  end
  return items
end

local function parse_flag(value, column)
  if value == "yes" then return true end
  if value == "no" then return false end
  return nil, ("bad %s value '%s' (expected yes or no)"):format(column, value)
end

-- Check a path template: below the API root, segments non-empty (a trailing
-- slash aside), placeholders whole segments with unique names.
local function check_path(path)
  if path:sub(1, #API_ROOT) ~= API_ROOT then
    return ("path '%s' does not start with %s"):format(path, API_ROOT)
  end
  local below_root = path:sub(#API_ROOT + 1):gsub("/$", "")
  local seen = {}
  for segment in (below_root .. "/"):gmatch("([^/]*)/") do
    if segment == "" and below_root ~= "" then
      return ("path '%s' has an empty segment"):format(path)
    end
    local name = segment:match("^{(.*)}$")
    if name then
      if not name:match("^[%a_][%w_]*$") then
        return ("path '%s' has a bad placeholder {%s}"):format(path, name)
      end
      if seen[name] then
        return ("path '%s' repeats the placeholder {%s}"):format(path, name)
      end
      seen[name] = true
    elseif segment:find("[{}%%]") then
      return ("path '%s' has a bad segment '%s'"):format(path, segment)
    end
  end
  return nil
end

-- Parse one data line into a row, or return nil and what is wrong with it.
local function parse_row(fields)
  if #fields ~= #COLUMNS then
    return nil, ("expected %d tab-separated fields, got %d"):format(#COLUMNS, #fields)
  end
  local method, path, operation_id, scope_text = fields[1], fields[2], fields[3], fields[4]
  if not METHOD_ORDER[method] then
    return nil, ("unknown method '%s'"):format(method)
  end
  local path_problem = check_path(path)
  if path_problem then
    return nil, path_problem
  end
  if operation_id == "" or operation_id:find("%c") then
    return nil, ("bad operation_id '%s'"):format(operation_id)
  end
  local scopes = split_commas(scope_text)
  for _, scope in ipairs(scopes) do
    if not scope:match("^[%a_]+:?[%a_]*$") then
      return nil, ("bad scope '%s'"):format(scope)
    end
  end
  local paginated, paginated_err = parse_flag(fields[5], "paginated")
  if paginated == nil then
    return nil, paginated_err
  end
  local dsn_allowed, dsn_err = parse_flag(fields[6], "dsn_allowed")
  if dsn_allowed == nil then
    return nil, dsn_err
  end
  return {
    method = method, path = path, operation_id = operation_id, scopes = scopes,
    paginated = paginated, dsn_allowed = dsn_allowed,
  }
end

--- Parse the operation table.
-- @param text the table's contents
-- @param source_name name used in error messages
-- @return array of rows { method, path, operation_id, scopes, paginated,
--   dsn_allowed }, sorted by path then method; or nil and an error message
--   "source:line: problem"
function generator.parse(text, source_name)
  local rows, by_route, by_operation_id = {}, {}, {}
  local line_number = 0
  for line in (text .. "\n"):gmatch("([^\n]*)\n") do
    line_number = line_number + 1
    line = line:gsub("\r$", "")
    local function fail(problem)
      return nil, ("%s:%d: %s"):format(source_name, line_number, problem)
    end
    if line_number == 1 then
      if line ~= table.concat(COLUMNS, "\t") then
        return fail("expected the header line: " .. table.concat(COLUMNS, " "))
      end
    elseif line:match("%S") then
      local row, problem = parse_row(split_tabs(line))
      if not row then
        return fail(problem)
      end
      local route = row.method .. " " .. row.path
      if by_route[route] then
        return fail(("%s is already listed on line %d"):format(route, by_route[route]))
      end
      if by_operation_id[row.operation_id] then
        return fail(("operation_id '%s' is already used on line %d")
          :format(row.operation_id, by_operation_id[row.operation_id]))
      end
      by_route[route] = line_number
      by_operation_id[row.operation_id] = line_number
      rows[#rows + 1] = row
    end
  end
  if #rows == 0 then
    return nil, ("%s: no operations"):format(source_name)
  end
  table.sort(rows, function(a, b)
    if a.path ~= b.path then
      return a.path < b.path
    end
    return METHOD_ORDER[a.method] < METHOD_ORDER[b.method]
  end)
  return rows
end

--- Quote a string as a Lua literal that gives the same bytes on every Lua
-- version (unlike %q): control characters as decimal escapes.
-- @param text a string
-- @return the literal
function generator.quote(text)
  return '"' .. text:gsub("[%c\\\"]", function(c)
    if c:match("%c") then return ("\\%03d"):format(c:byte()) end
    return "\\" .. c
  end) .. '"'
end
local quote = generator.quote

local function render_row(row)
  local quoted_scopes = {}
  for index, scope in ipairs(row.scopes) do
    quoted_scopes[index] = quote(scope)
  end
  local scope_list = #quoted_scopes > 0 and "{ " .. table.concat(quoted_scopes, ", ") .. " }" or "{}"
  local flags = ""
  if row.paginated then flags = flags .. ", paginated = true" end
  if row.dsn_allowed then flags = flags .. ", dsn_allowed = true" end
  return ("  { %s, %s, %s, %s%s },"):format(
    quote(row.method), quote(row.path), quote(row.operation_id), scope_list, flags)
end

--- Render parsed rows as the source of the data module.
-- @param rows as returned by parse
-- @param source_name the table's name, written into the header comment
-- @return Lua source text
function generator.render(rows, source_name)
  local lines = {
    "-- Generated by tools/gen_endpoints.lua from " .. source_name .. " (Sentry's public",
    "-- REST API operations, from its OpenAPI schema): " .. #rows .. " operations.",
    "-- Do not edit by hand; change the table and regenerate:",
    "--   lua tools/gen_endpoints.lua tools/endpoints.tsv > lua/sentry/endpoint_data.lua",
    "--",
    "-- Each row: { method, path template, operation id, scopes of which any one",
    "-- suffices }, plus `paginated = true` and `dsn_allowed = true` where they hold.",
    "-- luacheck: no max line length",
    "return {",
  }
  for _, row in ipairs(rows) do
    lines[#lines + 1] = render_row(row)
  end
  lines[#lines + 1] = "}"
  return table.concat(lines, "\n") .. "\n"
end

--- Parse and render in one step.
-- @param text the operation table's contents
-- @param source_name the table's name, for the header and error messages
-- @return Lua source text, or nil and an error message
function generator.generate(text, source_name)
  local rows, err = generator.parse(text, source_name)
  if not rows then
    return nil, err
  end
  return generator.render(rows, source_name)
end

--- A name for the input that says which data was used without writing this
-- machine's directories into the output.
-- @param path the input's path
-- @return its name as written into generated files
function generator.display_name(path)
  if path:sub(1, 1) == "/" or path:match("^%a:[/\\]") then
    return path:match("([^/\\]+)$")
  end
  return path
end

--- Run the generator as a command.
-- @param argv command-line arguments: optionally the table's path
-- @param stdout file handle receiving the generated module
-- @param stderr file handle receiving error messages
-- @return exit status: 0 on success, 1 on failure
function generator.main(argv, stdout, stderr)
  if #argv > 1 then
    stderr:write("usage: lua tools/gen_endpoints.lua [endpoints.tsv] > endpoint_data.lua\n")
    return 1
  end
  local input_path = argv[1] or DEFAULT_INPUT
  local file, open_err = io.open(input_path, "rb")
  if not file then
    stderr:write("gen_endpoints: ", open_err, "\n")
    return 1
  end
  local text = file:read("*a")
  file:close()
  local source, err = generator.generate(text, generator.display_name(input_path))
  if not source then
    stderr:write("gen_endpoints: ", err, "\n")
    return 1
  end
  stdout:write(source)
  return 0
end

-- Run only when started as a script, not when loaded by a spec.
if arg and type(arg[0]) == "string" and arg[0]:match("gen_endpoints%.lua$") then
  os.exit(generator.main(arg, io.stdout, io.stderr))
end

return generator
