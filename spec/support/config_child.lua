-- Run by spec/config_spec.lua in a child process with a controlled HOME,
-- working directory and environment: resolves the configuration with the
-- real defaults (os.getenv, HOME, the current directory) and prints the
-- result as one line of JSON. Display-safe: the token is redacted by
-- config.load.
--
-- Arguments: "load" (default), "no-files" (config = false) or "twice" (load
-- two times in this process, to show which warnings repeat).
local cjson = require "cjson"
local config = require "sentry.config"

local mode = arg[1] or "load"

local function describe_load(opts)
  local settings, warnings = config.load(opts)
  if not settings then
    return { error = warnings }
  end
  return { settings = settings, warnings = warnings }
end

local result
if mode == "no-files" then
  result = describe_load({ config = false })
elseif mode == "twice" then
  result = { first = describe_load(), second = describe_load() }
else
  result = describe_load()
end

io.write(cjson.encode(result), "\n")
