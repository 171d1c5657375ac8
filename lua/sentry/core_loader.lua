--- The C core (`sentry.core`), loaded in this one place: when it is missing
-- or was built for another Lua, the error says which Lua is running, which
-- one the core was built for (when the dynamic loader's message tells) and
-- the command that builds the right one. `require "sentry.core_loader"`
-- returns the core.
-- @module sentry.core_loader
-- @local

-- A symbol the dynamic loader could not find tells which Lua's headers the
-- core was compiled against: these exist as functions in one family only.
local BUILT_FOR_BY_SYMBOL = {
  lua_newuserdatauv = "Lua 5.4", lua_getiuservalue = "Lua 5.4", lua_setiuservalue = "Lua 5.4",
  lua_toclose = "Lua 5.4", lua_resetthread = "Lua 5.4", lua_warning = "Lua 5.4",
  lua_newuserdata = "Lua 5.1, 5.3 or LuaJIT", lua_getuservalue = "Lua 5.3",
  lua_setuservalue = "Lua 5.3",
  luaL_prepbuffsize = "Lua 5.3 or 5.4", lua_tonumberx = "Lua 5.3 or 5.4",
  luaL_checkversion_ = "Lua 5.3 or 5.4", lua_callk = "Lua 5.3 or 5.4", lua_pcallk = "Lua 5.3 or 5.4",
  lua_rawlen = "Lua 5.3 or 5.4", lua_rotate = "Lua 5.3 or 5.4", lua_geti = "Lua 5.3 or 5.4",
  luaL_setfuncs = "Lua 5.3, 5.4 or LuaJIT", luaL_setmetatable = "Lua 5.3, 5.4 or LuaJIT",
  luaL_prepbuffer = "Lua 5.1 or LuaJIT", lua_tonumber = "Lua 5.1 or LuaJIT",
  lua_objlen = "Lua 5.1 or LuaJIT", luaL_register = "Lua 5.1 or LuaJIT",
  lua_call = "Lua 5.1 or LuaJIT", lua_pcall = "Lua 5.1 or LuaJIT",
}

-- The running interpreter: its name for people, the `make LUA=` value and
-- the `luarocks --lua-version` that build a core it can load.
local function interpreter()
  local jit = rawget(_G, "jit")
  if type(jit) == "table" and jit.version then
    local host = rawget(_G, "vim") and "Neovim's " or (rawget(_G, "ngx") and "OpenResty's " or "")
    return { name = host .. jit.version, make = "luajit", luarocks = "5.1" }
  end
  local version = _VERSION:match("^Lua (%d+%.%d+)$") or "5.4"
  return { name = _VERSION, make = "lua" .. version, luarocks = version }
end

-- package.searchpath, which Lua 5.1 and LuaJIT lack.
local function search_cpath(name)
  local file = name:gsub("%.", "/")
  for template in package.cpath:gmatch("[^;]+") do
    local candidate = template:gsub("%?", file)
    local handle = io.open(candidate, "rb")
    if handle then
      handle:close()
      return candidate
    end
  end
end

local function fix_commands(running)
  return "Build it for this Lua: `make LUA=" .. running.make .. "` in the sentry-lua checkout (it writes "
    .. "lua/sentry/core.so), or with LuaRocks `luarocks --lua-version=" .. running.luarocks
    .. " make sentry-api-scm-1.rockspec` (a release: `luarocks --lua-version=" .. running.luarocks
    .. " install sentry-api`)"
end

-- Why `require "sentry.core"` failed with `message`, and what fixes it.
local function explain(message)
  local running = interpreter()
  message = tostring(message)
  local file = search_cpath("sentry.core")
  if not file then
    return "sentry: the C core (module sentry.core) is not installed for " .. running.name
      .. ": no sentry/core.so on package.cpath. " .. fix_commands(running) .. "."
  end
  local symbol = message:match("undefined symbol: ([%w_]+)")
  local built_for = symbol and BUILT_FOR_BY_SYMBOL[symbol]
  local why
  if built_for then
    why = "it was built for " .. built_for .. " (undefined symbol " .. symbol .. ")"
  elseif symbol then
    why = "it was built for another Lua (undefined symbol " .. symbol .. ")"
  else
    why = message:gsub("^error loading module 'sentry.core' from file '[^']*':%s*", "")
  end
  return "sentry: the C core " .. file .. " cannot be loaded into " .. running.name .. ": " .. why
    .. ". " .. fix_commands(running) .. "."
end

local loaded, core = pcall(require, "sentry.core")
if not loaded then error(explain(core), 0) end
return core
