-- Run by every Lua interpreter under tools/asan (LUA_INIT): keeps C modules
-- loaded until the process ends. Lua unloads them when it closes its state,
-- before LeakSanitizer looks, and a leak's stack would then point into an
-- unknown module instead of src/*.c.
local registry = debug.getregistry()
local libraries = registry._CLIBS or registry._LOADLIB -- Lua 5.2+ / Lua 5.1
local mt = type(libraries) == "table" and (getmetatable(libraries) or libraries)
if mt and rawget(mt, "__gc") then rawset(mt, "__gc", nil) end
