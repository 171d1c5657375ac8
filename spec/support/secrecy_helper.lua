-- A busted helper (busted --helper=spec/support/secrecy_helper.lua) for the
-- token-secrecy run of the whole suite (spec/hosts/secrecy):
--
-- * every spec that uses tokens.user_full gets tokens.distinctive instead, a
--   token the fake server accepts with the same scopes and whose secret part
--   ("feedfacecafebeef" x 4) cannot appear by accident;
-- * everything the library shows to a person or a program is written to the
--   file named by SENTRY_SECRECY_CAPTURE, one record per line: every error's
--   tostring and fields, every tostring(client), every hook payload and every
--   log line. spec/hosts/secrecy then searches that file, and the suite's own
--   output, for the secret. Errors are recorded at the end of the test that
--   made them, once the library has finished with them (scrubbing included).
local tokens = require "tokens"
local sentry = require "sentry"
local errors = require "sentry.errors"
local Client = require "sentry.client"

local capture_path = assert(os.getenv("SENTRY_SECRECY_CAPTURE"), "SENTRY_SECRECY_CAPTURE is not set")
local capture = assert(io.open(capture_path, "ab"))
capture:setvbuf("line")

-- SENTRY_SECRECY_TOKEN=unknown: a token in a format Sentry does not issue.
tokens.user_full = os.getenv("SENTRY_SECRECY_TOKEN") == "unknown" and tokens.distinctive_unknown
  or tokens.distinctive

-- Everything reachable from a value, as text (tables once each, keys sorted).
local function dump(value, seen, out, skip)
  local kind = type(value)
  if kind ~= "table" then
    out[#out + 1] = tostring(value)
    return
  end
  if seen[value] then return end
  seen[value] = true
  local mt = getmetatable(value)
  if mt and rawget(mt, "__tostring") then
    local ok, text = pcall(tostring, value)
    if ok then out[#out + 1] = text end
  end
  local keys = {}
  for key in pairs(value) do keys[#keys + 1] = key end
  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  for _, key in ipairs(keys) do
    if not (skip and skip[key]) then
      out[#out + 1] = tostring(key) .. "="
      dump(value[key], seen, out)
    end
  end
end

local function record(kind, value, skip)
  local out = {}
  dump(value, {}, out, skip)
  -- one record per line: newlines inside values become spaces
  capture:write(kind, "\t", (table.concat(out, " "):gsub("[\r\n]", " ")), "\n")
end

-- Errors: recorded at the end of the test that made them, once the library
-- has finished with them (retry_after, location, scrubbing...).
local made = {}
local new_error = errors.new
errors.new = function(fields)
  local err = new_error(fields)
  made[#made + 1] = err
  return err
end

local client_tostring = Client.__tostring
Client.__tostring = function(self)
  local text = client_tostring(self)
  record("client", text)
  return text
end

local HOOKS = { "on_request", "on_response", "on_retry" }

local new_client = sentry.new
sentry.new = function(opts)
  if type(opts) == "table" then
    local copy = {}
    for key, value in pairs(opts) do copy[key] = value end
    local log = opts.log
    copy.log = function(level, message)
      record("log", { level = level, message = message })
      if log then return log(level, message) end
      io.stderr:write("sentry: ", level, ": ", message, "\n")
    end
    local hooks = {}
    for _, name in ipairs(HOOKS) do
      local hook = type(opts.hooks) == "table" and opts.hooks[name]
      hooks[name] = function(info)
        record("hook", { hook = name, info = info })
        if hook then return hook(info) end
      end
    end
    if opts.hooks == nil or type(opts.hooks) == "table" then copy.hooks = hooks end
    opts = copy
  end
  local client, err = new_client(opts)
  if client then record("client", tostring(client)) end
  return client, err
end

local busted = require "busted"
busted.subscribe({ "test", "end" }, function()
  for i = 1, #made do record("error", made[i]) end
  made = {}
  return nil, true
end)
