--- Configuration, read the way sentry-cli reads it.
--
-- Sources, highest precedence first:
--
-- 1. the options given to `sentry.new` (`opts`);
-- 2. for the URL and the organization only: what an organization auth token
--    carries (`url`, `org`), as sentry-cli does;
-- 3. environment variables;
-- 4. the properties file that `SENTRY_PROPERTIES` names (`defaults.url`,
--    `auth.token`...: see `sentry.properties`);
-- 5. the project file: the nearest `.sentryclirc` (or `sentrycli.ini`) found
--    from the current directory upwards;
-- 6. the global file `~/.sentryclirc`, or when there is none
--    `~/.config/sentry/sentrycli.ini` (`$XDG_CONFIG_HOME/sentry/...`).
--
-- The files are merged key by key, as in sentry-cli: a key missing from one
-- is taken from the next. The URL and the proxy follow the token's source
-- (the same-source rule: see `resolve`).
--
-- What is read from where:
--
--    setting          opts              environment              file key
--    token            token             SENTRY_AUTH_TOKEN        [auth] token
--    base_url         base_url, region  SENTRY_URL               [defaults] url
--    org              org               SENTRY_ORG               [defaults] org
--    project          project           SENTRY_PROJECT           [defaults] project
--    proxy            proxy             http_proxy               [http] proxy_url
--    proxy_username   proxy_username                             [http] proxy_username
--    proxy_password   proxy_password                             [http] proxy_password
--    insecure         insecure                                   [http] verify_ssl (negated)
--    max_retries      max_retries       SENTRY_HTTP_MAX_RETRIES  [http] max_retries
--
-- Empty environment variables and empty file values count as unset. Other
-- `opts` fields (timeout, ca_file, hooks...) are passed through unchanged.
--
-- Failures (a malformed file, a bad value, a token that cannot be sent) are
-- returned as `nil, message`; `sentry.new` turns the message into an error of
-- kind "invalid". Warnings are returned as strings, never printed. No message,
-- warning or display value contains the token.
-- @module sentry.config

local errors = require "sentry.errors"
local token = require "sentry.token"
local ini = require "sentry.ini"
local properties = require "sentry.properties"
local text_helpers = require "sentry.text"
local core = require "sentry.core_loader"
local urls = require "sentry.url"

local config = {}

--- The URL used when nothing names one.
config.DEFAULT_URL = "https://sentry.io/"

local GLOBAL_FILE = ".sentryclirc"
local GLOBAL_LABEL = "~/.sentryclirc"
-- The global file's other place, below the configuration directory.
local CONFIG_DIR_FILE = "sentry/sentrycli.ini"
-- Looked for in each directory, in this order, as sentry-cli does.
local PROJECT_FILES = { ".sentryclirc", "sentrycli.ini" }
local MASK = "********"

-- Options that steer loading rather than configure the client.
local LOADER_OPTIONS = { config = true, env = true, home = true, cwd = true }

-- Every option `sentry.new` takes, with its Lua type: the one list of them.
local OPTION_TYPES = {
  token = "string", base_url = "string", region = "string", org = "string",
  project = "string", proxy = "string", proxy_username = "string",
  proxy_password = "string", insecure = "boolean", max_retries = "number",
  config = "boolean", env = "function", home = "string", cwd = "string",
  timeout = "number", connect_timeout = "number", max_retry_wait = "number", max_total_wait = "number",
  backoff_base = "number", backoff_factor = "number", backoff_cap = "number",
  retry_unsafe = "boolean", sleep = "function", user_agent = "string", ca_file = "string",
  allow_http = "boolean", follow_redirects = "boolean", check_scopes = "boolean", hooks = "table", log = "function",
  max_body_bytes = "number", transport = "string", keepalive_pool_size = "number", keepalive_timeout = "number",
  budget = "table",
}

--- The defaults of the options that have one, the policy's reset margin
-- (seconds added to a rate-limit reset) and a batch's or event-loop driver's
-- `concurrency`: the one table of them.
config.DEFAULTS = {
  timeout = 30, connect_timeout = 10, max_retries = 3, max_retry_wait = 60, max_total_wait = 120,
  backoff_base = 1, backoff_factor = 2, backoff_cap = 30, reset_margin = 0.1, retry_unsafe = false,
  transport = "auto", keepalive_pool_size = 32, keepalive_timeout = 60,
  check_scopes = false, follow_redirects = false, concurrency = 10, max_body_bytes = 64 * 1024 * 1024,
}

local TRANSPORTS = { auto = true, curl = true, ngx = true }
local HOOKS = { "on_request", "on_response", "on_retry" }

-- Files already warned about for loose permissions, in this process.
local warned_permissions = {}

-- -------------------------------------------------------------------------
-- The file system, through the C core

-- The working directory; $PWD when getcwd fails (the directory was removed).
local function current_directory()
  local pwd = os.getenv("PWD")
  return core.getcwd() or (pwd ~= "" and pwd or nil)
end

-- Whether group (0o040) or others (0o004) may read; no bit operators in 5.1.
local function readable_by_others(mode)
  return math.floor(mode / 32) % 2 == 1 or math.floor(mode / 4) % 2 == 1
end

-- -------------------------------------------------------------------------
-- Files

-- Paths are POSIX paths: the C core reads them with POSIX calls.
local function join(dir, name)
  return dir:sub(-1) == "/" and dir .. name or dir .. "/" .. name
end

-- The directory above `dir` ("/a/b" -> "/a", "/a" -> "/"); nil above the root.
local function parent_directory(dir)
  local parent = dir ~= "/" and dir:match("^(.*)/[^/]*$")
  if not parent then return nil end
  return parent == "" and "/" or parent
end

--- Configuration files larger than this are not read (they are a few lines).
config.MAX_FILE_BYTES = 1024 * 1024

-- The text of a file; false when there is no file, or when it is no regular
-- file or too large (then with a warning); nil + message when it exists but
-- cannot be read.
local function read_if_present(path, label, warnings)
  local text, problem = core.read_config_file(path, config.MAX_FILE_BYTES)
  if text == nil and problem:find("; not read$") then
    warnings[#warnings + 1] = label .. " is " .. problem .. " (only a regular file of at most "
      .. math.floor(config.MAX_FILE_BYTES / 1024) .. " KiB is read as configuration)"
    return false
  elseif text == nil then
    return nil, "cannot read " .. label .. ": " .. problem
  end
  return text
end

-- The nearest project file from `dir` upwards: path, text; nil when none;
-- nil + message when one cannot be read.
local function find_project_file(dir, warnings)
  local trimmed = text_helpers.trim_end(dir, "/")
  dir = trimmed ~= "" and trimmed or dir:sub(1, 1) -- "/" stays the root
  while dir do
    for _, name in ipairs(PROJECT_FILES) do
      local path = join(dir, name)
      local text, message = read_if_present(path, path, warnings)
      if text then
        return path, text
      elseif text == nil then
        return nil, message
      end
    end
    dir = parent_directory(dir)
  end
  return nil
end

-- Reads and parses a file found at `path` into `files`, with the next rank;
-- nothing when it is absent. Returns true, or nil + message.
local function add_file(files, path, label, parse, warnings)
  local text, message = read_if_present(path, label, warnings)
  if text == nil then
    return nil, message
  elseif text then
    local data
    data, message = parse(text, label)
    if not data then
      return nil, message
    end
    files[#files + 1] = { path = path, label = label, data = data, rank = #files + 2 }
    return true
  end
  return false
end

-- Reads and parses the configuration files, highest precedence first: the
-- file SENTRY_PROPERTIES names, the project file, the global file. A list
-- of { path, label, data, rank }, or nil + message. The rank orders the
-- configuration sources: 1 is the caller (opts and environment), then files.
local function load_files(home, cwd, env, warnings)
  local files = {}
  local global_path = home and join(home, GLOBAL_FILE)

  local properties_path = env("SENTRY_PROPERTIES")
  if properties_path and properties_path ~= "" then
    local label = "SENTRY_PROPERTIES file " .. properties_path
    local found, message = add_file(files, properties_path, label, properties.parse, warnings)
    if found == nil then
      return nil, message
    elseif not found then
      warnings[#warnings + 1] = label .. " does not exist; ignoring SENTRY_PROPERTIES"
    end
  end

  if cwd then
    local path, text = find_project_file(cwd, warnings)
    if not path and text then
      return nil, text
    end
    -- In the home directory the project file is the global one: read it once.
    if path and path ~= global_path then
      local data, message = ini.parse(text, path)
      if not data then
        return nil, message
      end
      files[#files + 1] = { path = path, label = path, data = data, rank = #files + 2 }
    end
  end

  if global_path then
    local found, message = add_file(files, global_path, GLOBAL_LABEL, ini.parse, warnings)
    if found == nil then
      return nil, message
    elseif not found then
      -- as sentry-cli: ~/.sentryclirc, else sentrycli.ini in the configuration directory
      local config_home = env("XDG_CONFIG_HOME")
      local xdg = config_home and config_home ~= ""
      local config_dir = xdg and config_home or join(home, ".config")
      local label = xdg and "$XDG_CONFIG_HOME/" .. CONFIG_DIR_FILE or "~/.config/" .. CONFIG_DIR_FILE
      found, message = add_file(files, join(config_dir, CONFIG_DIR_FILE), label, ini.parse, warnings)
      if found == nil then
        return nil, message
      end
    end
  end
  return files
end

local function permission_warnings(files, warnings)
  for _, file in ipairs(files) do
    local auth = file.data.auth
    if auth and auth.token and not warned_permissions[file.path] then
      local mode = core.stat_mode(file.path)
      if mode and readable_by_others(mode) then
        warned_permissions[file.path] = true
        warnings[#warnings + 1] = string.format(
          "%s holds an auth token and is readable by other users (mode %03o); "
            .. "restrict it with: chmod 600 %s", file.label, mode % 512, file.label)
      end
    end
  end
end

-- -------------------------------------------------------------------------
-- Sources: each finder returns { value, from, where } or nil.

-- `rank` names the configuration source: 1 for the caller (opts and the
-- environment), then one per file, nearest first. The same-source rule
-- compares ranks.
local CALLER = 1

local function from_opts(opts, field)
  if opts[field] ~= nil then
    return { value = opts[field], from = "opts." .. field, where = "opts." .. field, rank = CALLER }
  end
end

local function from_env(env, name)
  local value = env(name)
  if type(value) == "string" and value ~= "" then
    return { value = value, from = name, where = name, rank = CALLER }
  end
end

local function from_files(files, section, key)
  for _, file in ipairs(files) do
    local entry = file.data[section] and file.data[section][key]
    if entry and entry.value ~= "" then
      return {
        value = entry.value,
        from = file.label .. " [" .. section .. "] " .. key,
        where = file.label .. ":" .. entry.line .. ": [" .. section .. "] " .. key,
        rank = file.rank,
        file = file.label,
      }
    end
  end
end

-- The first found source among the arguments (which may be nil).
local function first_found(...)
  for i = 1, select("#", ...) do
    local found = select(i, ...)
    if found then
      return found
    end
  end
end

-- -------------------------------------------------------------------------
-- Values

local BOOLEANS = {
  ["true"] = true, yes = true, on = true, ["1"] = true,
  ["false"] = false, no = false, off = false, ["0"] = false,
}

local function parse_boolean(found)
  local value = BOOLEANS[found.value:lower()]
  if value == nil then
    return nil, found.where .. " must be true or false"
  end
  return value
end

local function parse_count(found)
  if not found.value:match("^%d+$") then
    return nil, found.where .. " must be a whole number (0 or more)"
  end
  return tonumber(found.value)
end

-- One spelling per API root: its origin (with the port), the path without a
-- trailing "/" or "/api/0"; what is no http(s) URL is left as it is.
local function normalize_url(target)
  local parts = urls.split(target)
  if not parts then
    return target
  end
  local path = text_helpers.trim_end(parts.path, "/"):gsub("/api/0$", "")
  return urls.origin(target) .. text_helpers.trim_end(path, "/")
end

-- "http://user:secret@proxy:3128" -> "http://user:********@proxy:3128"
local function hide_url_password(url)
  return (url:gsub("^(%a[%w+.%-]*://[^/@:]*:)[^/@]*@", "%1" .. MASK .. "@"))
end

local function is_sentry_io(target)
  local parts = urls.split(target)
  local host = parts and parts.host
  return host == "sentry.io" or (host ~= nil and host:sub(-10) == ".sentry.io")
end

-- " (did you mean 'token'?)" when an option is a typo or two away from `name`.
local function did_you_mean(name)
  local best = type(name) == "string" and text_helpers.closest(name:lower(), OPTION_TYPES)
  return best and " (did you mean '" .. best .. "'?)" or ""
end

-- A wrong option is the caller's mistake: the error names the caller's line.
local function check_option_types(opts)
  for field, value in pairs(opts) do
    local expected = OPTION_TYPES[field]
    local actual = type(value)
    local allowed = actual == expected or (field == "token" and value == false)
    if not expected then
      errors.raise_at_caller("unknown option '" .. tostring(field) .. "'" .. did_you_mean(field))
    elseif not allowed then
      errors.raise_at_caller("option '" .. field .. "' must be a " .. expected .. ", got " .. actual)
    end
  end
  for _, hook in ipairs(HOOKS) do
    if opts.hooks and opts.hooks[hook] ~= nil and type(opts.hooks[hook]) ~= "function" then
      errors.raise_at_caller("sentry.new: hooks." .. hook .. " must be a function")
    end
  end
  local retries = opts.max_retries
  if retries ~= nil and (retries < 0 or retries ~= math.floor(retries)) then
    errors.raise_at_caller("option 'max_retries' must be a whole number (0 or more)")
  end
end

-- The token, its source and what it says about itself.
local function resolve_token(opts, env, files, warnings)
  if opts.token == false then
    return { value = nil, from = "opts.token" }
  end
  local found = first_found(from_opts(opts, "token"), from_env(env, "SENTRY_AUTH_TOKEN"),
    from_files(files, "auth", "token"))
  if not found then
    local api_key = first_found(from_env(env, "SENTRY_API_KEY"), from_files(files, "auth", "api_key"))
    if api_key then
      warnings[#warnings + 1] = "found an API key (" .. api_key.from .. "), but API keys are "
        .. "deprecated and not supported; create an auth token at Settings > Auth Tokens"
    end
    return nil
  end
  local ok, message = token.check(found.value)
  if not ok then
    return nil, message .. " (token from " .. found.from .. ")"
  end
  found.info = token.parse(found.value)
  if found.info.invalid then
    warnings[#warnings + 1] = "the auth token from " .. found.from .. " looks like a Sentry "
      .. found.info.type .. " auth token but is malformed (" .. found.info.invalid
      .. "); it is sent as is, and nothing it claims to contain is used"
  elseif found.info.type == "unknown" then
    warnings[#warnings + 1] = "the auth token from " .. found.from .. " is not in a format "
      .. "Sentry issues (sntryu_..., sntrys_... or 64 hex characters); it is sent as is"
  end
  return found
end

local function resolve_url(opts, env, files, found_token, values, sources, warnings)
  local info = found_token and found_token.info or {}
  local token_url = info.url and { value = info.url, from = "org auth token" }
  local configured = first_found(from_env(env, "SENTRY_URL"), from_files(files, "defaults", "url"))

  if opts.base_url ~= nil or opts.region ~= nil then
    -- Explicit arguments win, even over the token.
    values.base_url, values.region = opts.base_url, opts.region
    sources.base_url = opts.base_url and "opts.base_url"
    sources.region = opts.region and "opts.region"
    local conflict
    if token_url and opts.base_url then
      conflict = normalize_url(opts.base_url) ~= normalize_url(token_url.value)
    elseif token_url then
      conflict = not is_sentry_io(token_url.value)
    end
    if conflict then
      local given = sources.base_url or sources.region
      warnings[#warnings + 1] = "the org auth token from " .. found_token.from .. " belongs to "
        .. token_url.value .. ", but " .. given .. " is "
        .. hide_url_password(opts.base_url or opts.region)
        .. "; using " .. given .. " because it was given explicitly"
    end
    return true
  end

  local token_rank = found_token and found_token.value and found_token.rank
  if not token_url and token_rank and configured and configured.rank ~= token_rank then
    -- The same-source rule (sentry-cli 3.8): a URL from another source than
    -- the token never receives it, so a .sentryclirc committed to a cloned
    -- repository cannot redirect the user's token.
    if configured.rank < token_rank then
      return nil, "not using the auth token from " .. found_token.from .. ": the URL comes from "
        .. configured.from .. " (" .. hide_url_password(configured.value) .. "), another configuration "
        .. "source, and a token is only sent to a URL from its own source. Put the token and the URL in "
        .. "the same place, or pass token and base_url to sentry.new"
    end
    warnings[#warnings + 1] = "ignoring a configured URL: " .. configured.from .. " ("
      .. hide_url_password(configured.value) .. ") is another configuration source than the auth token ("
      .. found_token.from .. "), and a token is only sent to a URL from its own source; using "
      .. config.DEFAULT_URL .. ". Put the URL beside the token, or pass base_url to sentry.new"
    configured = nil
  end
  local chosen = first_found(token_url, configured, { value = config.DEFAULT_URL, from = "default" })
  values.base_url, sources.base_url = chosen.value, chosen.from
  if token_url and configured and normalize_url(token_url.value) ~= normalize_url(configured.value) then
    warnings[#warnings + 1] = "the org auth token from " .. found_token.from .. " belongs to "
      .. token_url.value .. ", but " .. configured.from .. " is " .. hide_url_password(configured.value)
      .. "; using the token's URL"
  end
  return true
end

local function resolve_org(opts, env, files, found_token, values, sources, warnings)
  local info = found_token and found_token.info or {}
  local explicit = from_opts(opts, "org")
  local token_org = info.org and { value = info.org, from = "org auth token" }
  local configured = first_found(from_env(env, "SENTRY_ORG"), from_files(files, "defaults", "org"))
  local chosen = first_found(explicit, token_org, configured)
  if chosen then
    values.org, sources.org = chosen.value, chosen.from
  end
  local other = explicit or configured
  if token_org and other and other.value ~= token_org.value then
    local using = explicit and (explicit.from .. " because it was given explicitly")
      or "the token's organization"
    warnings[#warnings + 1] = "the org auth token from " .. found_token.from
      .. " belongs to organization '" .. token_org.value .. "', but " .. other.from
      .. " is '" .. other.value .. "'; using " .. using
  end
end

-- Settings with no special rules: the first source that has a value.
local function resolve_simple(opts, env, files, found_token, values, sources, warnings)
  local plain = {
    { "project", "SENTRY_PROJECT", "defaults", "project" },
    { "proxy", "http_proxy", "http", "proxy_url" },
    { "proxy_username", nil, "http", "proxy_username" },
    { "proxy_password", nil, "http", "proxy_password" },
  }
  for _, rule in ipairs(plain) do
    local field, variable, section, key = rule[1], rule[2], rule[3], rule[4]
    local found = first_found(from_opts(opts, field), variable and from_env(env, variable),
      from_files(files, section, key))
    if found then
      local routes_token = field:sub(1, 5) == "proxy"
      if routes_token and found.file and found_token and found_token.value and found_token.rank ~= found.rank then
        -- like the URL: a file steers the token's route only when the token is its own
        warnings[#warnings + 1] = "ignoring " .. found.from .. ": it is another configuration source "
          .. "than the auth token (" .. found_token.from .. "), and a file's proxy is only used for "
          .. "its own token. Put the proxy beside the token, or pass it to sentry.new"
      else
        values[field], sources[field] = found.value, found.from
      end
    end
  end

  -- Only code turns certificate checks off: a file may sit in a cloned repository.
  local insecure = from_opts(opts, "insecure")
  values.insecure = insecure and insecure.value or false
  sources.insecure = insecure and insecure.from or nil
  local verify = from_files(files, "http", "verify_ssl")
  if verify and parse_boolean(verify) ~= true and not insecure then
    warnings[#warnings + 1] = "ignoring " .. verify.where .. " = " .. verify.value .. ": certificate checks "
      .. "are turned off only by code (insecure = true in sentry.new), never by a configuration file"
  end

  local retries = first_found(from_opts(opts, "max_retries"),
    from_env(env, "SENTRY_HTTP_MAX_RETRIES"), from_files(files, "http", "max_retries"))
  if retries then
    local count = retries.value
    if type(count) == "string" then
      local message
      count, message = parse_count(retries)
      if not count then
        -- as sentry-cli: a value it cannot use is warned about, not fatal
        warnings[#warnings + 1] = "ignoring " .. message .. "; using the default"
      end
    end
    if count then values.max_retries, sources.max_retries = count, retries.from end
  end
  return true
end

local function resolve(opts)
  if opts == nil then
    opts = {}
  elseif type(opts) ~= "table" then
    errors.raise_at_caller("bad argument #1 (table expected, got " .. type(opts) .. ")")
  end
  check_option_types(opts)
  local env = opts.env or os.getenv

  local files = {}
  local warnings = {}
  if opts.config ~= false then
    local home = opts.home or env("HOME")
    if home == "" then
      home = nil
    end
    local message
    files, message = load_files(home, opts.cwd or current_directory(), env, warnings)
    if not files then
      return nil, message
    end
    permission_warnings(files, warnings)
  end

  local values, sources = {}, {}
  for field, value in pairs(opts) do
    if not LOADER_OPTIONS[field] then
      values[field] = value
    end
  end

  local found_token, message = resolve_token(opts, env, files, warnings)
  if message then
    return nil, message
  end
  values.token = found_token and found_token.value or nil
  sources.token = found_token and found_token.from or nil

  local ok
  ok, message = resolve_url(opts, env, files, found_token, values, sources, warnings)
  if not ok then
    return nil, message
  end
  resolve_org(opts, env, files, found_token, values, sources, warnings)
  ok, message = resolve_simple(opts, env, files, found_token, values, sources, warnings)
  if not ok then
    return nil, message
  end
  return values, warnings, sources
end

--- Resolves the configuration for a client.
--
-- Used by `sentry.new`. Besides the client options, `opts` may hold:
-- `config = false` to skip the files (the environment still applies);
-- `env`, a function like `os.getenv`; `home`, the home directory; `cwd`, the
-- directory the project file search starts from (default: the current
-- directory).
-- @tparam[opt] table opts the options given to `sentry.new`
-- @treturn[1] table values: `opts` (minus `config`, `env`, `home`, `cwd`) with
--   the resolved `token` (the real one), `base_url`, `region`, `org`,
--   `project`, `proxy`, `proxy_username`, `proxy_password`, `insecure`
--   (always a boolean) and `max_retries`
-- @treturn[1] {string,...} warnings (never containing the token)
-- @treturn[1] table sources: for each resolved field of `values`, where its
--   value came from (see `load` for the labels)
-- @return[2] nil
-- @treturn[2] string what is wrong, naming the file and line or the variable
-- @raise when an option has the wrong type
function config.resolve(opts)
  local values, warnings, sources = resolve(opts)
  if not values then
    local message = warnings
    return nil, token.scrub(message)
  end
  for i, warning in ipairs(warnings) do
    warnings[i] = token.scrub(warning)
  end
  return values, warnings, sources
end

-- `value ~= value` catches NaN, which compares false with everything.
local function positive(name, value)
  if value ~= nil and (value ~= value or value <= 0) then return name .. " must be greater than 0" end
end

local function non_negative(name, value)
  if value ~= nil and (value ~= value or value < 0) then return name .. " must be 0 or more" end
end

local function whole(name, value)
  if value ~= nil and not (value >= 1 and value == math.floor(value) and value < math.huge) then
    return name .. " must be a whole number of at least 1"
  end
end

-- The `budget` option: nil (process memory), { shared_dict = name } or { redis = { host, port, ... } }.
local REDIS_FIELDS = { host = "string", port = "number", timeout = "number", prefix = "string", password = "string",
  database = "number" }
local function check_budget(budget)
  if budget == nil then return nil end
  local usage = " (budget = { shared_dict = \"name\" } or budget = { redis = { host = \"127.0.0.1\", port = 6379 } })"
  for field in pairs(budget) do
    if field ~= "shared_dict" and field ~= "redis" then return "budget: unknown field '" .. tostring(field) .. "'" .. usage end
  end
  if (budget.shared_dict == nil) == (budget.redis == nil) then return "budget needs one store" .. usage end
  if budget.shared_dict ~= nil then
    if type(budget.shared_dict) ~= "string" or budget.shared_dict == "" then
      return "budget.shared_dict must be the name of a lua_shared_dict" .. usage
    end
    return nil
  end
  if type(budget.redis) ~= "table" then return "budget.redis must be a table" .. usage end
  for field, value in pairs(budget.redis) do
    if not REDIS_FIELDS[field] then return "budget.redis: unknown field '" .. tostring(field) .. "'" .. usage end
    if type(value) ~= REDIS_FIELDS[field] then
      return "budget.redis." .. field .. " must be a " .. REDIS_FIELDS[field] .. ", got " .. type(value)
    end
  end
  if not budget.redis.host then return "budget.redis needs a host" .. usage end
  return positive("budget.redis.timeout", budget.redis.timeout)
end

local function check_values(values)
  return positive("timeout", values.timeout) or positive("connect_timeout", values.connect_timeout)
    or non_negative("max_retry_wait", values.max_retry_wait)
    or non_negative("max_total_wait", values.max_total_wait)
    or non_negative("backoff_base", values.backoff_base) or positive("backoff_factor", values.backoff_factor)
    or non_negative("backoff_cap", values.backoff_cap) or positive("max_body_bytes", values.max_body_bytes)
    or positive("keepalive_timeout", values.keepalive_timeout) or whole("keepalive_pool_size", values.keepalive_pool_size)
    or (values.transport ~= nil and not TRANSPORTS[values.transport]
      and "transport must be \"auto\", \"curl\" or \"ngx\"")
    or check_budget(values.budget)
end

--- The client's settings: resolved `values` checked, with the defaults filled in.
-- @tparam table values from `resolve`
-- @treturn ?table settings
-- @treturn ?string which value is out of range
function config.settings(values)
  local problem = check_values(values)
  if problem then return nil, problem end
  local settings = {}
  for name, value in pairs(config.DEFAULTS) do settings[name] = value end
  for name, value in pairs(values) do settings[name] = value end
  return settings
end

--- Describes the configuration for display: what is used, and from where.
--
-- Safe to print: the token is redacted (see `sentry.token.redact`), as are
-- the proxy password and any token-like text.
-- @tparam[opt] table opts as for `resolve`
-- @treturn[1] table settings: `{ name = { value = ..., from = label } }` for
--   `token` (also with `type`), `url`, `region`, `org`, `project`, `proxy`,
--   `proxy_username`, `proxy_password`, `verify_ssl`, `max_retries`; a name is
--   absent when nothing set it (except `url` and `verify_ssl`, which show their
--   defaults). Labels: `"opts.<field>"`, an environment variable's name,
--   `"org auth token"`, `"~/.sentryclirc [section] key"`, `"<path of the
--   project file> [section] key"`, `"default"`.
-- @treturn[1] {string,...} warnings
-- @return[2] nil
-- @treturn[2] string what is wrong
function config.load(opts)
  local values, warnings, sources = config.resolve(opts)
  if not values then
    return nil, warnings
  end
  local settings = {}
  local function show(name, value, from)
    if from then
      if type(value) == "string" then
        value = token.scrub(value)
      end
      settings[name] = { value = value, from = from }
    end
  end

  if sources.token then
    settings.token = {
      value = token.redact(values.token),
      from = sources.token,
      type = values.token and token.parse(values.token).type or nil,
    }
  end
  show("url", values.base_url, sources.base_url)
  show("region", values.region, sources.region)
  show("org", values.org, sources.org)
  show("project", values.project, sources.project)
  show("proxy", values.proxy and hide_url_password(values.proxy), sources.proxy)
  show("proxy_username", values.proxy_username, sources.proxy_username)
  show("proxy_password", MASK, sources.proxy_password)
  show("verify_ssl", not values.insecure, sources.insecure or "default")
  show("max_retries", values.max_retries, sources.max_retries)
  return settings, warnings
end

return config
