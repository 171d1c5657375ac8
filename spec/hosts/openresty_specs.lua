-- Runs busted inside nginx, from a timer (where cosockets work), writing its
-- report to <prefix>/specs.out and the exit status to <prefix>/specs.done.
local runner = {}

local function write_file(path, text)
  local file = assert(io.open(path, "w"))
  file:write(text)
  file:close()
end

function runner.start(prefix, root, specs)
  ngx.timer.at(0, function()
    local out = assert(io.open(prefix .. "/specs.out", "w"))
    io.output(out)
    -- the LuaJIT build of the core, not whatever lua/sentry/core.so was last built for
    local output = os.getenv("SENTRY_SPECS_OUTPUT") or "TAP" -- gtest names each test as it starts
    local args = { [0] = "busted", "-C", root, "-o", output, "--cpath=" .. root .. "/build/luajit/?.so" }
    for spec in specs:gmatch("%S+") do args[#args + 1] = spec end
    _G.arg = args
    -- busted ends with os.exit when something failed; that must not end the worker
    local exit_code = 0
    local real_exit = os.exit
    os.exit = function(code) -- luacheck: ignore 122
      exit_code = code
      error("busted finished", 0)
    end
    local ok, err = pcall(require("busted.runner"), { standalone = false })
    os.exit = real_exit -- luacheck: ignore 122
    if not ok and err ~= "busted finished" then
      out:write("\nbusted raised: ", tostring(err), "\n")
      exit_code = 1
    end
    out:close()
    write_file(prefix .. "/specs.done", tostring(exit_code))
  end)
end

return runner
