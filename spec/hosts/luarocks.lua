-- Helpers for spec/hosts/luarocks, run with a plain Lua interpreter:
--
--   lua5.4 spec/hosts/luarocks.lua files sentry-api-scm-1.rockspec
--     prints what the rockspec builds: "module <name> <file>" per Lua module,
--     "source <file>" per C source of sentry.core
--   lua5.4 spec/hosts/luarocks.lua same SCM_ROCKSPEC RELEASE_ROCKSPEC
--     prints where the two differ other than in version and source.tag
--   lua5.x spec/hosts/luarocks.lua use TREE FAKE_URL TOKEN MODULE...
--     with LUA_PATH/LUA_CPATH from `luarocks path`: checks that require finds
--     sentry, its C core and every MODULE inside TREE, and that a request to
--     the fake Sentry works; prints the problems and exits 1 if there are any.
local mode = arg[1]

local function load_rockspec(path)
  local env = {}
  local chunk
  if setfenv then -- Lua 5.1
    chunk = assert(loadfile(path))
    setfenv(chunk, env)
  else
    chunk = assert(loadfile(path, "t", env))
  end
  chunk()
  return env
end

-- Prints each path where two values differ; true when they are the same.
local function compare(a, b, where)
  if type(a) ~= "table" or type(b) ~= "table" then
    if a == b then return true end
    print(where .. ": " .. tostring(a) .. " ~= " .. tostring(b))
    return false
  end
  local same = true
  for key in pairs(a) do same = compare(a[key], b[key], where .. "." .. tostring(key)) and same end
  for key in pairs(b) do
    if a[key] == nil then same = compare(nil, b[key], where .. "." .. tostring(key)) and same end
  end
  return same
end

local function same_but_version(scm_path, release_path)
  local scm, release = load_rockspec(scm_path), load_rockspec(release_path)
  scm.version, release.version = nil, nil
  scm.source.tag, release.source.tag = nil, nil
  os.exit(compare(scm, release, "rockspec") and 0 or 1)
end

local function rockspec_files(path)
  local env = load_rockspec(path)
  local names = {}
  for name in pairs(env.build.modules) do names[#names + 1] = name end
  table.sort(names)
  for _, name in ipairs(names) do
    local module = env.build.modules[name]
    if type(module) == "string" then
      print("module " .. name .. " " .. module)
    else
      for _, source in ipairs(module.sources) do print("source " .. source) end
    end
  end
end

local function starts_with(s, prefix)
  return s ~= nil and s:sub(1, #prefix) == prefix
end

-- The file the process loaded as the C core, from the kernel's list of mappings.
local function loaded_core_file()
  local maps = io.open("/proc/self/maps", "r")
  if not maps then return nil end
  for line in maps:lines() do
    local file = line:match("(/%S*/sentry/core%.so)$")
    if file then
      maps:close()
      return file
    end
  end
  maps:close()
end

local function use_installed(tree, fake_url, token, modules)
  local problems = {}
  local function problem(text) problems[#problems + 1] = text end

  local ok, sentry = pcall(require, "sentry")
  if not ok then
    print("require 'sentry' failed: " .. tostring(sentry))
    os.exit(1)
  end
  local source = debug.getinfo(sentry.new, "S").source
  if not starts_with(source, "@" .. tree .. "/") then problem("sentry was loaded from " .. source) end
  local core_file = loaded_core_file()
  if not starts_with(core_file, tree .. "/") then problem("the C core loaded is " .. tostring(core_file)) end

  for _, name in ipairs(modules) do
    local loaded, err = pcall(require, name)
    if not loaded then problem("require '" .. name .. "' failed: " .. tostring(err)) end
  end

  local client, err = sentry.new { token = token, base_url = fake_url, org = "acme", config = false }
  local res
  if client then res, err = client:get("/organizations/{org}/projects/", { query = { per_page = 3 } }) end
  if not res then
    problem("a request to the fake Sentry failed: " .. tostring(err))
  elseif res.status ~= 200 or #res.body ~= 3 then
    problem("a request to the fake Sentry answered " .. res.status .. " with " .. #res.body .. " items")
  end

  for _, text in ipairs(problems) do print(text) end
  os.exit(#problems == 0 and 0 or 1)
end

if mode == "files" then
  rockspec_files(assert(arg[2], "usage: luarocks.lua files ROCKSPEC"))
elseif mode == "same" then
  same_but_version(assert(arg[2], "SCM_ROCKSPEC"), assert(arg[3], "RELEASE_ROCKSPEC"))
elseif mode == "use" then
  local modules = {}
  for i = 5, #arg do modules[#modules + 1] = arg[i] end
  use_installed(assert(arg[2], "TREE"), assert(arg[3], "FAKE_URL"), assert(arg[4], "TOKEN"), modules)
else
  io.stderr:write("usage: luarocks.lua files ROCKSPEC | same SCM_ROCKSPEC RELEASE_ROCKSPEC | use TREE FAKE_URL TOKEN MODULE...\n")
  os.exit(2)
end
