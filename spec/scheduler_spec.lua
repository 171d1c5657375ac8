-- sentry.scheduler on its own, with stand-in exchanges and engine: which
-- waits a response may cut short.
local Scheduler = require "sentry.scheduler"

describe("the scheduler", function()
  it("lets no response cut short a retry's wait, even of a request that once polled", function()
    local started = {}
    local engine = {}
    local function exchange(pauses)
      return {
        pause = function() return table.remove(pauses, 1) or { action = "go" } end,
        start_on = function(_, _, id) started[#started + 1] = id end,
        settle = function() return { action = "retry", wait = 60 } end,
      }
    end
    local scheduler = Scheduler.new(5, function() end)
    -- "a" first waits for the endpoint's first answer (a poll), then goes when due
    scheduler:add("a", exchange { { action = "wait", wait = 0, recheck = "probe" } })
    scheduler:add("b", exchange {})
    scheduler:start_ready(engine)
    scheduler:start_ready(engine)
    assert.are.same({ "b", "a" }, started)
    scheduler:complete { id = "a", message = "bad gateway", code = "network" } -- retried in 60 s
    scheduler:complete { id = "b", message = "bad gateway", code = "network" } -- a response meanwhile
    started = {}
    local next_due = scheduler:start_ready(engine)
    assert.are.same({}, started)
    assert.is_true(next_due > require("sentry.core").now() + 50)
  end)
end)
