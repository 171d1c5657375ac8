-- What most specs need: the running fake Sentry and a client pointed at it.
local fake = require "fake_sentry"
local tokens = require "tokens"

local harness = { tokens = tokens, fake = fake }

--- The fake server (started once per process, or reused from the test runner).
function harness.server()
  return fake.start()
end

--- A client for the fake server; `overrides` replace the defaults. Configuration
-- files and the environment are ignored so a developer's own setup cannot leak in.
function harness.client(overrides)
  local sentry = require "sentry"
  local opts = {
    token = tokens.user_full,
    base_url = harness.server().url,
    org = "acme",
    config = false,
    env = function() return nil end,
    sleep = function() end,
    log = function() end,
  }
  for key, value in pairs(overrides or {}) do
    if value == harness.NONE then opts[key] = nil else opts[key] = value end
  end
  return sentry.new(opts)
end

--- A client that records the waits it is asked to sleep instead of sleeping.
-- @treturn table the client
-- @treturn table the waits, in seconds, in order
function harness.recording_client(overrides)
  local waits = {}
  overrides = overrides or {}
  overrides.sleep = function(seconds) waits[#waits + 1] = seconds end
  return assert(harness.client(overrides)), waits
end

--- Runs fn; returns its first two results and the seconds it took.
function harness.timed(fn)
  local started = harness.now()
  local a, b = fn()
  return a, b, harness.now() - started
end

--- Marks an option to remove from the defaults in `harness.client`.
harness.NONE = setmetatable({}, { __tostring = function() return "harness.NONE" end })

--- How requests travel in this run: "ngx" (cosockets) when the specs run
-- inside nginx (spec/hosts/openresty-specs), else "curl".
function harness.transport()
  return require("sentry.cosocket").available() and "ngx" or "curl"
end

--- The interpreter running these specs (the lowest index of `arg`), as a
-- path a child process started elsewhere can run.
function harness.interpreter()
  local interpreter, index = "lua", -1
  while arg and arg[index] do
    interpreter = arg[index]
    index = index - 1
  end
  if interpreter:find("/", 1, true) and interpreter:sub(1, 1) ~= "/" then
    interpreter = io.popen("pwd"):read("*l") .. "/" .. interpreter
  end
  return interpreter
end

--- Seconds since the epoch, sub-second.
function harness.now()
  return require("sentry.core").now()
end

return harness
