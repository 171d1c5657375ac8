--- What loading the library costs, in a fresh process (run by bench/driver.lua):
--
--   lua bench/startup.lua require|new|operation
--
-- `require` loads the module; `new` also makes a client; `operation` also
-- makes one call by name, refused offline (the first use of `client.api`
-- loads the schema data). Prints "cpu_ms=... kib=... operation_modules=N":
-- the CPU time taken, the Lua heap it left in use (after a full collection)
-- and how many of the operation layer's modules are loaded.
local mode = arg[1]
local OPERATION_MODULES = { "sentry.api", "sentry.validate", "sentry.operation_data" }

collectgarbage("collect")
collectgarbage("collect")
local heap_before = collectgarbage("count")
local started = os.clock()
local sentry = require "sentry"
local client
if mode == "new" or mode == "operation" then
  client = assert(sentry.new { token = "sntryu_" .. ("a"):rep(64), org = "acme", config = false })
end
if mode == "operation" then
  local res, err = client.api.getOrganizationIssue {}
  assert(not res and err.kind == "invalid", "the call should be refused offline")
end
local cpu = os.clock() - started
collectgarbage("collect")
collectgarbage("collect")
local loaded = 0
for _, name in ipairs(OPERATION_MODULES) do
  if package.loaded[name] then loaded = loaded + 1 end
end
print(string.format("cpu_ms=%.3f kib=%.1f operation_modules=%d", cpu * 1000,
  collectgarbage("count") - heap_before, loaded))
if client then client:close() end
