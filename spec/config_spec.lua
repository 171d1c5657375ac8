-- luacheck: std +busted
local config = require "sentry.config"
local ini = require "sentry.ini"
local tokens = require "tokens"
local cjson = require "cjson"

---------------------------------------------------------------------------
-- Helpers

local function quote(s)
  return "'" .. s:gsub("'", "'\\''") .. "'"
end

-- os.execute returns 0 on Lua 5.1 and true on later versions.
local function run(command)
  local status = os.execute(command)
  return status == true or status == 0
end

local function read_command(command)
  local pipe = assert(io.popen(command))
  local output = pipe:read("*a")
  pipe:close()
  return output
end

local created_dirs = {}

local function make_temp_dir()
  local path = os.tmpname()
  os.remove(path)
  assert(run("mkdir " .. quote(path)))
  created_dirs[#created_dirs + 1] = path
  return path
end

local function remove_temp_dirs()
  for i = #created_dirs, 1, -1 do
    run("chmod -R u+rwx " .. quote(created_dirs[i]) .. " && rm -rf " .. quote(created_dirs[i]))
    created_dirs[i] = nil
  end
end

local function mkdir(path)
  assert(run("mkdir -p " .. quote(path)))
end

local function write_file(path, text, mode)
  local file = assert(io.open(path, "wb"))
  file:write(text)
  file:close()
  assert(run("chmod " .. (mode or "600") .. " " .. quote(path)))
end

local function user_token(digit)
  return "sntryu_" .. string.rep(digit, 64)
end

local TOKEN_OPTS = user_token("0")
local TOKEN_ENV = user_token("e")
local TOKEN_PROJECT = user_token("b")
local TOKEN_GLOBAL = user_token("9")
local ORG_TOKEN = tokens.org_token("https://acme.example.com", "acme")
local ORG_TOKEN_SAAS = tokens.org_token("https://sentry.io", "saas-org")
local ORG_TOKEN_SELF_HOSTED = tokens.org_token(nil, "self-org")
local ALL_TOKENS = { TOKEN_OPTS, TOKEN_ENV, TOKEN_PROJECT, TOKEN_GLOBAL, ORG_TOKEN,
  ORG_TOKEN_SAAS, ORG_TOKEN_SELF_HOSTED, tokens.distinctive }

-- Fails when any part of a test token's secret appears in `text`.
local function assert_no_token(text)
  assert.is_string(text)
  for _, secret in ipairs(ALL_TOKENS) do
    assert.is_nil(text:find(secret:sub(9, 40), 1, true), "a token leaked")
  end
  assert.is_nil(text:find(tokens.DISTINCTIVE_MARKER, 1, true), "a token leaked")
end

local function global_rc(home, text, mode)
  write_file(home .. "/.sentryclirc", text, mode)
end

---------------------------------------------------------------------------

describe("sentry.ini", function()
  it("reads sections, both separators, quotes, comments and the last of repeated keys", function()
    local data = assert(ini.parse(table.concat({
      "\239\187\191; a comment",
      "early = before any section",
      "[auth]",
      "  token = first  ",
      "# another comment",
      "token=second",
      "[defaults]",
      "url: https://sentry.example.com:9000/",
      "org = \"quoted org\"",
      "project = 'p'",
      "note = a ; b # c",
      "empty =",
      "[auth]",
      "extra = yes\r",
    }, "\n"), "test.ini"))
    assert.same({ value = "before any section", line = 2 }, data[""].early)
    assert.same({ value = "second", line = 6 }, data.auth.token)
    assert.equal("yes", data.auth.extra.value)
    assert.equal("https://sentry.example.com:9000/", data.defaults.url.value)
    assert.equal("quoted org", data.defaults.org.value)
    assert.equal("p", data.defaults.project.value)
    assert.equal("a ; b # c", data.defaults.note.value)
    assert.equal("", data.defaults.empty.value)
  end)

  it("keeps section and key names case-sensitive", function()
    local data = assert(ini.parse("[Auth]\nToken = x\n", "f"))
    assert.is_nil(data.auth)
    assert.equal("x", data.Auth.Token.value)
  end)

  local bad = {
    { "[auth\ntoken = x", "f:1: section header is missing its closing ']'" },
    { "[auth]\n[ ]", "f:2: section name is empty" },
    { "[auth]\n\n= value", "f:3: missing key before '='" },
    { "[auth]\ntoken " .. TOKEN_ENV, "f:2: expected 'key = value', a [section] header or a comment" },
  }
  for _, case in ipairs(bad) do
    it("names the file and line of a malformed line: " .. case[2], function()
      local data, message = ini.parse(case[1], "f")
      assert.is_nil(data)
      assert.equal(case[2], message)
    end)
  end
end)

describe("sentry.config", function()
  local root, home, project, cwd, env

  local function resolve(opts)
    opts = opts or {}
    if opts.home == nil then opts.home = home end
    if opts.cwd == nil then opts.cwd = cwd end
    opts.env = opts.env or function(name) return env[name] end
    return config.resolve(opts)
  end

  local function load(opts)
    opts = opts or {}
    if opts.home == nil then opts.home = home end
    if opts.cwd == nil then opts.cwd = cwd end
    opts.env = opts.env or function(name) return env[name] end
    local settings, warnings = config.load(opts)
    if settings then
      assert_no_token(cjson.encode(settings))
      assert_no_token(cjson.encode(warnings))
    else
      assert_no_token(warnings)
    end
    return settings, warnings
  end

  local function warning_matching(warnings, text)
    for _, warning in ipairs(warnings) do
      if warning:find(text, 1, true) then
        return warning
      end
    end
  end

  before_each(function()
    root = make_temp_dir()
    home = root .. "/home"
    project = root .. "/code/app"
    cwd = project .. "/src/deep"
    mkdir(home)
    mkdir(cwd)
    env = {}
  end)

  after_each(remove_temp_dirs)

  describe("token precedence", function()
    before_each(function()
      global_rc(home, "[auth]\ntoken = " .. TOKEN_GLOBAL .. "\n")
      write_file(project .. "/.sentryclirc", "[auth]\ntoken = " .. TOKEN_PROJECT .. "\n")
      env.SENTRY_AUTH_TOKEN = TOKEN_ENV
    end)

    it("takes opts.token over everything", function()
      local values, _, sources = resolve({ token = TOKEN_OPTS })
      assert.equal(TOKEN_OPTS, values.token)
      assert.equal("opts.token", sources.token)
    end)

    it("takes SENTRY_AUTH_TOKEN over the files", function()
      local values, _, sources = resolve()
      assert.equal(TOKEN_ENV, values.token)
      assert.equal("SENTRY_AUTH_TOKEN", sources.token)
    end)

    it("takes the project file over the global file", function()
      env.SENTRY_AUTH_TOKEN = nil
      local values, _, sources = resolve()
      assert.equal(TOKEN_PROJECT, values.token)
      assert.equal(project .. "/.sentryclirc [auth] token", sources.token)
    end)

    it("falls back to the global file", function()
      env.SENTRY_AUTH_TOKEN = ""
      os.remove(project .. "/.sentryclirc")
      local values, _, sources = resolve()
      assert.equal(TOKEN_GLOBAL, values.token)
      assert.equal("~/.sentryclirc [auth] token", sources.token)
    end)

    it("uses no token at all with token = false", function()
      local values, _, sources = resolve({ token = false })
      assert.is_nil(values.token)
      assert.equal("opts.token", sources.token)
    end)

    it("shows the token redacted, with its type and source", function()
      local settings = load()
      assert.same({ value = "sntryu_e********", from = "SENTRY_AUTH_TOKEN", type = "user" },
        settings.token)
    end)
  end)

  describe("defaults precedence", function()
    before_each(function()
      global_rc(home, "[defaults]\nurl = https://global.example.com/\norg = global-org\n"
        .. "project = global-project\n")
    end)

    it("takes the global file when nothing else names a value", function()
      local settings = load()
      assert.same({ value = "https://global.example.com/", from = "~/.sentryclirc [defaults] url" },
        settings.url)
      assert.same({ value = "global-org", from = "~/.sentryclirc [defaults] org" }, settings.org)
      assert.same({ value = "global-project", from = "~/.sentryclirc [defaults] project" },
        settings.project)
    end)

    it("merges the project file over the global file key by key", function()
      write_file(project .. "/.sentryclirc", "[defaults]\norg = project-org\n")
      local settings = load()
      assert.same({ value = "project-org", from = project .. "/.sentryclirc [defaults] org" },
        settings.org)
      assert.equal("~/.sentryclirc [defaults] url", settings.url.from)
      assert.equal("~/.sentryclirc [defaults] project", settings.project.from)
    end)

    it("takes org and project from a file whatever the token's source", function()
      env.SENTRY_AUTH_TOKEN = TOKEN_ENV
      write_file(project .. "/.sentryclirc", "[defaults]\norg = project-org\n")
      local values = resolve()
      assert.equal("project-org", values.org)
      assert.equal("global-project", values.project)
    end)

    it("takes the environment over the files", function()
      write_file(project .. "/.sentryclirc", "[defaults]\norg = project-org\n")
      env.SENTRY_URL = "https://env.example.com"
      env.SENTRY_ORG = "env-org"
      env.SENTRY_PROJECT = "env-project"
      local settings = load()
      assert.same({ value = "https://env.example.com", from = "SENTRY_URL" }, settings.url)
      assert.same({ value = "env-org", from = "SENTRY_ORG" }, settings.org)
      assert.same({ value = "env-project", from = "SENTRY_PROJECT" }, settings.project)
    end)

    it("takes opts over the environment", function()
      env.SENTRY_URL = "https://env.example.com"
      env.SENTRY_ORG = "env-org"
      env.SENTRY_PROJECT = "env-project"
      local values, _, sources = resolve({ base_url = "https://opts.example.com/",
        org = "opts-org", project = "opts-project" })
      assert.equal("https://opts.example.com/", values.base_url)
      assert.equal("opts-org", values.org)
      assert.equal("opts-project", values.project)
      assert.same({ token = sources.token, base_url = "opts.base_url", org = "opts.org",
        project = "opts.project" }, sources)
    end)

    it("leaves the URL to an explicit region", function()
      env.SENTRY_URL = "https://env.example.com"
      local values, _, sources = resolve({ region = "de" })
      assert.is_nil(values.base_url)
      assert.equal("de", values.region)
      assert.equal("opts.region", sources.region)
    end)

    it("treats empty environment variables as unset", function()
      env.SENTRY_ORG = ""
      assert.equal("~/.sentryclirc [defaults] org", load().org.from)
    end)

    it("uses sentry.io when nothing names a URL", function()
      os.remove(home .. "/.sentryclirc")
      local settings = load()
      assert.same({ value = "https://sentry.io/", from = "default" }, settings.url)
      assert.is_nil(settings.org)
      assert.is_nil(settings.token)
    end)

    it("passes other options through", function()
      local values = resolve({ timeout = 5, ca_file = "ca.pem" })
      assert.equal(5, values.timeout)
      assert.equal("ca.pem", values.ca_file)
      assert.is_nil(values.env)
      assert.is_nil(values.home)
    end)
  end)

  describe("SENTRY_PROPERTIES", function()
    local props
    before_each(function() props = root .. "/sentry.properties" end)

    it("is read between the environment and the project file", function()
      write_file(props, "# a comment\n! another\ndefaults.url = " .. "https://props.example.com\n"
        .. "defaults.org: props-org\nauth.token " .. TOKEN_PROJECT .. "\n")
      write_file(project .. "/.sentryclirc", "[defaults]\norg = project-org\nproject = project-project\n")
      env.SENTRY_PROPERTIES = props
      local settings = load()
      assert.same({ value = "props-org", from = "SENTRY_PROPERTIES file " .. props .. " [defaults] org" },
        settings.org)
      assert.equal("project-project", settings.project.value)
      assert.equal("SENTRY_PROPERTIES file " .. props .. " [auth] token", settings.token.from)
      assert.equal("https://props.example.com", settings.url.value)
      env.SENTRY_ORG = "env-org"
      assert.equal("env-org", load().org.value)
    end)

    it("reads continuation lines and escapes", function()
      write_file(props, "defaults.project = web\\\n    -app\ndefaults.org = a\\u0063me\n")
      env.SENTRY_PROPERTIES = props
      local values = resolve()
      assert.equal("web-app", values.project)
      assert.equal("acme", values.org)
    end)

    it("keeps the same-source rule: its URL does not get a token from elsewhere", function()
      write_file(props, "defaults.url = https://props.example.com\n")
      global_rc(home, "[auth]\ntoken = " .. TOKEN_GLOBAL .. "\n")
      env.SENTRY_PROPERTIES = props
      local values, message = resolve()
      assert.is_nil(values)
      assert.truthy(message:find("the URL comes from SENTRY_PROPERTIES file", 1, true))
    end)

    it("warns when the file it names does not exist", function()
      env.SENTRY_PROPERTIES = root .. "/missing.properties"
      local values, warnings = resolve()
      assert.truthy(values)
      assert.equal("SENTRY_PROPERTIES file " .. root .. "/missing.properties does not exist; "
        .. "ignoring SENTRY_PROPERTIES", warnings[1])
    end)
  end)

  describe("~/.config/sentry/sentrycli.ini", function()
    it("is the global file when there is no ~/.sentryclirc", function()
      mkdir(home .. "/.config/sentry")
      write_file(home .. "/.config/sentry/sentrycli.ini", "[defaults]\norg = xdg-org\n")
      assert.same({ value = "xdg-org", from = "~/.config/sentry/sentrycli.ini [defaults] org" }, load().org)
      global_rc(home, "[defaults]\norg = rc-org\n")
      assert.equal("rc-org", load().org.value)
    end)

    it("follows XDG_CONFIG_HOME", function()
      mkdir(root .. "/xdg/sentry")
      write_file(root .. "/xdg/sentry/sentrycli.ini", "[defaults]\nproject = xdg-project\n")
      env.XDG_CONFIG_HOME = root .. "/xdg"
      assert.same({ value = "xdg-project", from = "$XDG_CONFIG_HOME/sentry/sentrycli.ini [defaults] project" },
        load().project)
    end)
  end)

  describe("the project file search", function()
    it("finds the file in a parent directory", function()
      write_file(root .. "/code/.sentryclirc", "[defaults]\norg = code-org\n")
      assert.equal(root .. "/code/.sentryclirc [defaults] org", load().org.from)
    end)

    it("takes the nearest file", function()
      write_file(root .. "/code/.sentryclirc", "[defaults]\norg = code-org\n")
      write_file(project .. "/src/.sentryclirc", "[defaults]\norg = src-org\n")
      assert.equal("src-org", load().org.value)
    end)

    it("reads sentrycli.ini, but prefers .sentryclirc in the same directory", function()
      write_file(project .. "/sentrycli.ini", "[defaults]\norg = ini-org\n")
      assert.equal("ini-org", load().org.value)
      write_file(project .. "/.sentryclirc", "[defaults]\norg = rc-org\n")
      assert.equal("rc-org", load().org.value)
    end)

    it("reads the global file once when the search reaches it", function()
      global_rc(home, "[defaults]\norg = home-org\n")
      local settings = load({ cwd = home })
      assert.same({ value = "home-org", from = "~/.sentryclirc [defaults] org" }, settings.org)
    end)

    it("is skipped, with the global file, when config = false", function()
      global_rc(home, "[auth]\ntoken = " .. TOKEN_GLOBAL .. "\n[defaults]\norg = home-org\n")
      write_file(project .. "/.sentryclirc", "[defaults]\nproject = p\n")
      env.SENTRY_PROJECT = "env-project"
      local values, _, sources = resolve({ config = false })
      assert.is_nil(values.token)
      assert.is_nil(values.org)
      assert.equal("env-project", values.project)
      assert.equal("default", sources.base_url)
    end)
  end)

  describe("an org auth token", function()
    it("overrides the URL and org from the environment and files, with a warning each", function()
      global_rc(home, "[defaults]\nurl = https://file.example.com\n")
      env.SENTRY_ORG = "env-org"
      env.SENTRY_AUTH_TOKEN = ORG_TOKEN
      local settings, warnings = load()
      assert.same({ value = "https://acme.example.com", from = "org auth token" }, settings.url)
      assert.same({ value = "acme", from = "org auth token" }, settings.org)
      assert.equal("org", settings.token.type)
      assert.equal(2, #warnings)
      assert.equal("the org auth token from SENTRY_AUTH_TOKEN belongs to https://acme.example.com, "
        .. "but ~/.sentryclirc [defaults] url is https://file.example.com; using the token's URL",
        warnings[1])
      assert.equal("the org auth token from SENTRY_AUTH_TOKEN belongs to organization 'acme', "
        .. "but SENTRY_ORG is 'env-org'; using the token's organization", warnings[2])
    end)

    it("does not warn when the configured URL is the same up to slashes, case and /api/0", function()
      env.SENTRY_URL = "HTTPS://ACME.example.com:443/api/0/"
      env.SENTRY_ORG = "acme"
      local _, warnings = load({ token = ORG_TOKEN })
      assert.same({}, warnings)
    end)

    it("treats another port as another server", function()
      local _, warnings = load({ token = ORG_TOKEN, base_url = "https://acme.example.com:8443" })
      assert.truthy(warning_matching(warnings, "but opts.base_url is https://acme.example.com:8443;"))
    end)

    it("does not show a password in a conflicting URL", function()
      env.SENTRY_URL = "https://me:hunter2@other.example.com"
      local _, warnings = load({ token = ORG_TOKEN })
      assert.truthy(warning_matching(warnings, "but SENTRY_URL is https://me:********@other.example.com;"))
    end)

    it("gives way to explicit opts, with a warning", function()
      local settings, warnings = load({ token = ORG_TOKEN, base_url = "https://other.example.com",
        org = "other" })
      assert.same({ value = "https://other.example.com", from = "opts.base_url" }, settings.url)
      assert.same({ value = "other", from = "opts.org" }, settings.org)
      assert.truthy(warning_matching(warnings, "but opts.base_url is https://other.example.com; "
        .. "using opts.base_url because it was given explicitly"))
      assert.truthy(warning_matching(warnings, "but opts.org is 'other'; "
        .. "using opts.org because it was given explicitly"))
    end)

    it("fits an explicit region when it belongs to sentry.io", function()
      local settings, warnings = load({ token = ORG_TOKEN_SAAS, region = "de" })
      assert.same({ value = "de", from = "opts.region" }, settings.region)
      assert.same({ value = "saas-org", from = "org auth token" }, settings.org)
      assert.same({}, warnings)
    end)

    it("warns when an explicit region meets a self-hosted token", function()
      local _, warnings = load({ token = ORG_TOKEN, region = "us" })
      assert.truthy(warning_matching(warnings, "but opts.region is us; using opts.region"))
    end)

    it("without a URL (self-hosted) leaves the URL to the configuration", function()
      env.SENTRY_URL = "https://self.example.com"
      local settings, warnings = load({ token = ORG_TOKEN_SELF_HOSTED })
      assert.same({ value = "https://self.example.com", from = "SENTRY_URL" }, settings.url)
      assert.same({ value = "self-org", from = "org auth token" }, settings.org)
      assert.same({}, warnings)
    end)

    it("that is malformed is used, but nothing in it is trusted", function()
      env.SENTRY_ORG = "env-org"
      local broken = ORG_TOKEN:gsub("_[^_]*$", "_short")
      local values, warnings = resolve({ token = broken })
      assert.equal(broken, values.token)
      assert.equal("env-org", values.org)
      assert.equal(config.DEFAULT_URL, values.base_url)
      assert.equal(1, #warnings)
      assert.truthy(warning_matching(warnings, "looks like a Sentry org auth token but is malformed"))
      assert_no_token(warnings[1])
    end)
  end)

  it("warns about a token in an unknown format, and sends it", function()
    local values, warnings = resolve({ token = "glpat-0123456789abcdefghij" })
    assert.equal("glpat-0123456789abcdefghij", values.token)
    assert.truthy(warning_matching(warnings, "is not in a format Sentry issues"))
    assert.is_nil(warnings[1]:find("glpat-0123", 1, true))
  end)

  it("warns about an API key when there is no token", function()
    env.SENTRY_API_KEY = "0123456789abcdef0123456789abcdef"
    local _, warnings = resolve()
    assert.equal("found an API key (SENTRY_API_KEY), but API keys are deprecated and not "
      .. "supported; create an auth token at Settings > Auth Tokens", warnings[1])
  end)

  describe("bad configuration", function()
    it("names the file and line of a malformed line, without quoting it", function()
      write_file(project .. "/.sentryclirc", "[auth]\n\ntoken " .. TOKEN_PROJECT .. "\n")
      local values, message = resolve()
      assert.is_nil(values)
      assert.equal(project .. "/.sentryclirc:3: expected 'key = value', a [section] header "
        .. "or a comment", message)
    end)

    it("names the global file as ~/.sentryclirc", function()
      global_rc(home, "[defaults\n")
      local _, message = load()
      assert.equal("~/.sentryclirc:1: section header is missing its closing ']'", message)
    end)

    it("reports a config file that cannot be read", function()
      write_file(project .. "/.sentryclirc", "[defaults]\norg = o\n", "000")
      if io.open(project .. "/.sentryclirc", "rb") then return end -- root reads anything
      local _, message = resolve()
      assert.equal("cannot read " .. project .. "/.sentryclirc: Permission denied", message)
    end)

    it("skips a directory named like a config file, with a warning", function()
      mkdir(project .. "/.sentryclirc")
      global_rc(home, "[defaults]\norg = global-org\n")
      local values, warnings = resolve()
      assert.equal("global-org", values.org)
      assert.equal(project .. "/.sentryclirc is not a regular file (a directory, FIFO, socket or device); "
        .. "not read (only a regular file of at most 1024 KiB is read as configuration)", warnings[1])
    end)

    it("does not hang on a FIFO, nor read a device without end", function()
      assert(run("mkfifo " .. quote(root .. "/code/.sentryclirc")))
      assert(run("ln -s /dev/zero " .. quote(home .. "/.sentryclirc")))
      local started = os.time()
      local values, warnings = resolve({ token = TOKEN_OPTS })
      assert.truthy(values, warnings)
      assert.is_true(os.time() - started <= 2)
      assert.truthy(warning_matching(warnings, root .. "/code/.sentryclirc is not a regular file"))
      assert.truthy(warning_matching(warnings, "~/.sentryclirc is not a regular file"))
    end)

    it("does not read a config file larger than 1 MiB", function()
      global_rc(home, "[defaults]\norg = big\n# " .. string.rep("x", 1024 * 1024) .. "\n")
      local values, warnings = resolve()
      assert.is_nil(values.org)
      assert.equal("~/.sentryclirc is larger than 1024 KiB; not read (only a regular file of at most "
        .. "1024 KiB is read as configuration)", warnings[1])
    end)

    it("refuses a token that cannot be sent, saying where it came from", function()
      env.SENTRY_AUTH_TOKEN = TOKEN_ENV .. "\n"
      local values, message = load()
      assert.is_nil(values)
      assert.equal("auth token contains whitespace at position 72; remove spaces/newlines "
        .. "copied with it (token from SENTRY_AUTH_TOKEN)", message)
    end)

    it("refuses a DSN in place of a token", function()
      global_rc(home, "[auth]\ntoken = https://" .. string.rep("f", 32) .. "@o1.ingest.sentry.io/2\n")
      local _, message = resolve()
      assert.truthy(message:find("this looks like a DSN", 1, true))
      assert.truthy(message:find("(token from ~/.sentryclirc [auth] token)", 1, true))
    end)

    it("ignores a verify_ssl that is neither true nor false, with a warning", function()
      global_rc(home, "[http]\n\nverify_ssl = maybe\n")
      local values, warnings = resolve()
      assert.is_false(values.insecure)
      assert.equal("ignoring ~/.sentryclirc:3: [http] verify_ssl = maybe: certificate checks are turned off "
        .. "only by code (insecure = true in sentry.new), never by a configuration file", warnings[1])
    end)

    it("ignores a retry count that is not a whole number, with a warning, as sentry-cli does", function()
      env.SENTRY_HTTP_MAX_RETRIES = "abc"
      local values, warnings = resolve()
      assert.is_nil(values.max_retries)
      assert.same({ "ignoring SENTRY_HTTP_MAX_RETRIES must be a whole number (0 or more); using the default" },
        warnings)
      local c = assert(require("sentry").new { home = home, cwd = cwd, env = function(name) return env[name] end,
        token = TOKEN_OPTS, log = function() end })
      c:close()
    end)

    it("raises for options of the wrong type", function()
      assert.has_error(function() resolve({ org = 42 }) end,
        "option 'org' must be a string, got number")
      assert.has_error(function() resolve({ token = true }) end,
        "option 'token' must be a string, got boolean")
      assert.has_error(function() resolve({ max_retries = -1 }) end,
        "option 'max_retries' must be a whole number (0 or more)")
    end)
  end)

  describe("[http] settings", function()
    it("reads verify_ssl, max_retries and the proxy", function()
      global_rc(home, "[http]\nverify_ssl = false\nmax_retries = 7\n"
        .. "proxy_url = http://me:hunter2@proxy.example:3128\n"
        .. "proxy_username = me\nproxy_password = hunter2\n")
      local values = resolve()
      assert.is_false(values.insecure) -- only code turns certificate checks off
      assert.equal(7, values.max_retries)
      assert.equal("http://me:hunter2@proxy.example:3128", values.proxy)
      assert.equal("hunter2", values.proxy_password)
      local settings = load()
      assert.same({ value = true, from = "default" }, settings.verify_ssl)
      assert.same({ value = 7, from = "~/.sentryclirc [http] max_retries" }, settings.max_retries)
      assert.equal("http://me:********@proxy.example:3128", settings.proxy.value)
      assert.equal("********", settings.proxy_password.value)
      assert.equal("me", settings.proxy_username.value)
    end)

    it("lets opts and the environment win", function()
      global_rc(home, "[http]\nverify_ssl = false\nmax_retries = 7\nproxy_url = http://file:1\n")
      env.http_proxy = "http://env:2"
      env.SENTRY_HTTP_MAX_RETRIES = "4"
      local values, _, sources = resolve()
      assert.equal("http://env:2", values.proxy)
      assert.equal("http_proxy", sources.proxy)
      assert.equal(4, values.max_retries)
      values, _, sources = resolve({ insecure = false, max_retries = 0, proxy = "http://opts:3" })
      assert.is_false(values.insecure)
      assert.equal("opts.insecure", sources.insecure)
      assert.equal(0, values.max_retries)
      assert.equal("http://opts:3", values.proxy)
    end)

    it("verifies TLS by default", function()
      local values = resolve()
      assert.is_false(values.insecure)
      assert.same({ value = true, from = "default" }, load().verify_ssl)
    end)
  end)

  describe("file permissions", function()
    it("warns, once per file, when a token file is readable by others", function()
      global_rc(home, "[auth]\ntoken = " .. TOKEN_GLOBAL .. "\n", "644")
      local _, warnings = load()
      assert.same({ "~/.sentryclirc holds an auth token and is readable by other users "
        .. "(mode 644); restrict it with: chmod 600 ~/.sentryclirc" }, warnings)
      _, warnings = load()
      assert.same({}, warnings)
    end)

    it("warns about group-readable project files too", function()
      write_file(project .. "/.sentryclirc", "[auth]\ntoken = " .. TOKEN_PROJECT .. "\n", "640")
      local _, warnings = load()
      assert.equal(project .. "/.sentryclirc holds an auth token and is readable by other users "
        .. "(mode 640); restrict it with: chmod 600 " .. project .. "/.sentryclirc", warnings[1])
    end)

    it("stays quiet about private token files and files without a token", function()
      global_rc(home, "[auth]\ntoken = " .. TOKEN_GLOBAL .. "\n", "600")
      write_file(project .. "/.sentryclirc", "[defaults]\norg = o\n", "644")
      local _, warnings = load()
      assert.same({}, warnings)
    end)
  end)
end)

---------------------------------------------------------------------------
-- The same rules with the real defaults: os.getenv, HOME and the working
-- directory of a separate process.

describe("sentry.config in a child process", function()
  local source_dir = debug.getinfo(1, "S").source:sub(2):match("^(.*)/[^/]*$") or "."
  local repo_root = read_command("cd " .. quote(source_dir .. "/..") .. " && pwd"):gsub("\n$", "")

  local interpreter = require("harness").interpreter()

  local root, home, project, cwd

  -- Runs the child in `dir` with exactly the variables in `variables` (plus
  -- PATH and the Lua path); returns its decoded output and the raw text.
  local function run_child(dir, variables, mode)
    -- the same C core this interpreter loaded (test runs build one per Lua version)
    local cpath = package.cpath:gsub("[^;]+", function(entry)
      return entry:sub(1, 1) == "/" and entry or repo_root .. "/" .. entry:gsub("^%./", "")
    end)
    local assignments = {
      "PATH=" .. quote(os.getenv("PATH") or "/usr/bin:/bin"),
      "LUA_PATH=" .. quote(repo_root .. "/lua/?.lua;" .. repo_root .. "/lua/?/init.lua;;"),
      "LUA_CPATH=" .. quote(cpath),
    }
    for name, value in pairs(variables) do
      assignments[#assignments + 1] = name .. "=" .. quote(value)
    end
    local command = "cd " .. quote(dir) .. " && env -i " .. table.concat(assignments, " ")
      .. " " .. quote(interpreter) .. " " .. quote(repo_root .. "/spec/support/config_child.lua")
      .. " " .. (mode or "load") .. " 2>&1"
    local output = read_command(command)
    assert_no_token(output)
    local result = cjson.decode(output)
    assert.is_table(result, output)
    return result, output
  end

  before_each(function()
    root = make_temp_dir()
    home = root .. "/home"
    project = root .. "/code/app"
    cwd = project .. "/src/deep"
    mkdir(home)
    mkdir(cwd)
  end)

  after_each(remove_temp_dirs)

  it("applies environment > project file > global file, searching upwards", function()
    global_rc(home, "[auth]\ntoken = " .. TOKEN_GLOBAL .. "\n[defaults]\nurl = https://g.example\n"
      .. "org = global-org\nproject = global-project\n")
    write_file(project .. "/.sentryclirc", "[defaults]\norg = project-org\nproject = project-p\n")
    local result = run_child(cwd, { HOME = home, SENTRY_PROJECT = "env-project" }, "load")
    local s = result.settings
    assert.same({ value = "sntryu_9********", from = "~/.sentryclirc [auth] token", type = "user" },
      s.token)
    assert.same({ value = "https://g.example", from = "~/.sentryclirc [defaults] url" }, s.url)
    assert.same({ value = "project-org", from = project .. "/.sentryclirc [defaults] org" }, s.org)
    assert.same({ value = "env-project", from = "SENTRY_PROJECT" }, s.project)
    assert.same({}, result.warnings)
  end)

  it("takes SENTRY_AUTH_TOKEN over the files and the token's URL and org over the rest",
    function()
      global_rc(home, "[auth]\ntoken = " .. TOKEN_GLOBAL .. "\n[defaults]\norg = global-org\n")
      local result = run_child(cwd, { HOME = home, SENTRY_AUTH_TOKEN = ORG_TOKEN,
        SENTRY_URL = "https://env.example" }, "load")
      local s = result.settings
      assert.same({ value = "sntrys_e********", from = "SENTRY_AUTH_TOKEN", type = "org" }, s.token)
      assert.same({ value = "https://acme.example.com", from = "org auth token" }, s.url)
      assert.same({ value = "acme", from = "org auth token" }, s.org)
      assert.equal(2, #result.warnings)
      assert.truthy(result.warnings[1]:find("but SENTRY_URL is https://env.example; using the "
        .. "token's URL", 1, true))
      assert.truthy(result.warnings[2]:find("but ~/.sentryclirc [defaults] org is 'global-org'",
        1, true))
    end)

  it("skips the files with config = false, and still reads the environment", function()
    global_rc(home, "[auth]\ntoken = " .. TOKEN_GLOBAL .. "\n")
    write_file(project .. "/.sentryclirc", "[defaults]\norg = project-org\n")
    local result = run_child(cwd, { HOME = home, SENTRY_ORG = "env-org" }, "no-files")
    assert.is_nil(result.settings.token)
    assert.same({ value = "env-org", from = "SENTRY_ORG" }, result.settings.org)
  end)

  it("reports a malformed line with file and line number", function()
    write_file(project .. "/.sentryclirc", "[defaults]\norg = ok\nthis line is wrong\n")
    local result = run_child(cwd, { HOME = home }, "load")
    assert.equal(project .. "/.sentryclirc:3: expected 'key = value', a [section] header "
      .. "or a comment", result.error)
  end)

  it("warns once per process about a token file others can read", function()
    global_rc(home, "[auth]\ntoken = " .. TOKEN_GLOBAL .. "\n", "604")
    local result = run_child(cwd, { HOME = home }, "twice")
    assert.same({ "~/.sentryclirc holds an auth token and is readable by other users "
      .. "(mode 604); restrict it with: chmod 600 ~/.sentryclirc" }, result.first.warnings)
    assert.same({}, result.second.warnings)
  end)

  it("finds the project file from $HOME itself, read once as the global file", function()
    global_rc(home, "[defaults]\norg = home-org\n")
    local result = run_child(home, { HOME = home }, "load")
    assert.same({ value = "home-org", from = "~/.sentryclirc [defaults] org" }, result.settings.org)
  end)

  it("works without HOME", function()
    write_file(project .. "/.sentryclirc", "[defaults]\norg = project-org\n")
    local result = run_child(cwd, {}, "load")
    assert.equal("project-org", result.settings.org.value)
  end)
end)
