--- `:checkhealth sentry` in Neovim: is the C core built for this Neovim's
-- Lua, which libcurl and TLS library it uses, and where the token would come
-- from (never the token itself).
-- @module sentry.health
local health = {}

-- vim.health (Neovim 0.10+: start/ok/warn/error; 0.8-0.9: report_*), or the
-- `health` module of Neovim 0.7.
local function reporter()
  local vim = rawget(_G, "vim")
  local api = (vim and vim.health) or require("health")
  return {
    start = api.start or api.report_start,
    ok = api.ok or api.report_ok,
    warn = api.warn or api.report_warn,
    error = api.error or api.report_error,
    info = api.info or api.report_info,
  }
end

--- Runs the checks and reports them through Neovim's health API.
function health.check()
  local report = reporter()
  report.start("sentry-lua")
  local jit = rawget(_G, "jit")
  local interpreter = jit and jit.version or _VERSION
  local loaded, core = pcall(require, "sentry.core_loader")
  if not loaded then
    -- the loader's message says which Lua the core was built for and the make command that fixes it
    report.error(tostring(core), { "build it for Neovim's LuaJIT: make LUA=luajit (in the plugin's directory)" })
    return
  end
  report.ok("C core loaded in " .. interpreter)
  report.ok("libcurl " .. tostring(core.curl_version) .. ", TLS: " .. tostring(core.curl_tls))
  local has_cjson = pcall(require, "cjson.safe")
  if has_cjson then
    report.ok("lua-cjson found")
  else
    report.error("lua-cjson is missing", { "install lua-cjson for Lua 5.1 (Debian: apt install lua-cjson)" })
  end

  local sentry = require "sentry"
  local settings, problem = sentry.config.load()
  if not settings then
    report.error("the configuration cannot be used: " .. problem)
    return
  end
  for _, warning in ipairs(problem or {}) do report.warn(warning) end
  if settings.token then
    report.ok(string.format("auth token (%s) from %s", settings.token.type, settings.token.from))
  else
    report.warn("no auth token found", { "set SENTRY_AUTH_TOKEN, or add [auth] token to ~/.sentryclirc" })
  end
  report.info("API root: " .. settings.url.value .. " (from " .. settings.url.from .. ")")
  if settings.org then report.info("organization: " .. settings.org.value .. " (from " .. settings.org.from .. ")") end
end

return health
