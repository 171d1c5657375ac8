-- On LuaJIT the request path must compile: one bytecode LuaJIT cannot
-- compile on it (a closure, a vararg passed on, a return that closes upvalues)
-- aborts every trace through a request, and the whole Lua layer then runs
-- interpreted (it cost 10k instructions a request, 17k with a placeholder).
local harness = require "harness"

describe("the request path on LuaJIT", function()
  it("compiles: no trace through client:get aborts on a bytecode LuaJIT cannot compile", function()
    if not jit or harness.transport() ~= "curl" then return pending("LuaJIT and libcurl only") end
    local vmdef, util = require "jit.vmdef", require "jit.util"
    local client = harness.client { org = "acme" }
    local aborted = {}
    local function on_trace(what, _, func, pc, code, info)
      if what ~= "abort" or vmdef.traceerr[code] ~= "NYI: bytecode %d" then return end
      local where = util.funcinfo(func, pc)
      if where.source and where.source:find("sentry/", 1, true) then
        aborted[#aborted + 1] = string.format("%s:%s: bytecode %s", where.source, where.currentline, tostring(info))
      end
    end
    jit.flush()
    jit.attach(on_trace, "trace")
    for _ = 1, 300 do
      assert(client:get("/organizations/acme/projects/"))
      assert(client:get("/organizations/{org}/projects/"))
    end
    jit.attach(on_trace)
    client:close()
    assert.are.same({}, aborted)
  end)
end)
