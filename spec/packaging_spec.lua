-- luacheck: std +busted
-- What a user sees when the install is not right: a C core that is missing or
-- was built for another Lua (loaded in a child interpreter), an option error
-- that points at the caller's line, and a user's build that a new compiler
-- warning does not break.
local shell = require "shell"
local tokens = require "tokens"
local sentry = require "sentry"

-- The Debian name of the interpreter running this spec, as `make LUA=` takes it.
local function running_lua()
  if rawget(_G, "jit") then return "luajit" end
  return "lua" .. _VERSION:match("%d+%.%d+")
end

local function scratch_dir()
  local dir = os.tmpname()
  os.remove(dir)
  assert(shell.run("mkdir -p " .. shell.quote(dir)))
  return dir
end

-- Builds the core for `lua` into a scratch directory; its output and whether it built.
-- Without LD_PRELOAD: under `make asan` the sanitizer runtime would check make
-- and the compiler (GNU make trips it), not the core.
local function build_core(lua, dir, make_args)
  local out = shell.capture("env -u LD_PRELOAD make -s build LUA=" .. lua .. " BUILD=" .. shell.quote(dir) .. " "
    .. (make_args or "") .. " 2>&1; echo \"exit=$?\"")
  return out, out:match("exit=0%s*$") ~= nil
end

-- `require "sentry"` in a child interpreter with only `cpath` for C modules;
-- its stderr and whether it succeeded.
local function require_sentry_with(cpath)
  local program = "package.path = 'lua/?.lua;lua/?/init.lua;' .. package.path; package.cpath = "
    .. string.format("%q", cpath) .. "; require 'sentry'"
  local out = shell.capture(running_lua() .. " -e " .. shell.quote(program) .. " 2>&1; echo \"exit=$?\"")
  return out, out:match("exit=0%s*$") ~= nil
end

describe("packaging", function()
  local lua = running_lua()
  local version = lua == "luajit" and "5.1" or lua:match("%d+%.%d+")

  describe("the C core", function()
    it("built for another Lua: says which, and the command that builds the right one", function()
      local other = lua == "lua5.4" and "lua5.1" or "lua5.4"
      local dir = scratch_dir()
      local build_log, built = build_core(other, dir)
      assert(built, build_log)
      local out, ok = require_sentry_with(dir .. "/?.so")
      shell.run("rm -rf " .. shell.quote(dir))
      assert.is_false(ok)
      local running = rawget(_G, "jit") and jit.version or _VERSION
      assert.matches("cannot be loaded into " .. running:gsub("%p", "%%%0"), out)
      -- Which symbol the dynamic loader misses first depends on the pair:
      -- Lua 5.1 misses one that 5.3, 5.4 and LuaJIT all have.
      local built_for = other == "lua5.4" and "Lua [%d., ]*5%.4" or "Lua 5%.1 or LuaJIT"
      assert.matches("built for " .. built_for, out)
      assert.matches("make LUA=" .. lua, out, 1, true)
      assert.matches("luarocks --lua-version=" .. version .. " make sentry-api-scm-1.rockspec", out, 1, true)
    end)

    it("missing: says so for this Lua, and how to build it", function()
      local dir = scratch_dir()
      local out, ok = require_sentry_with(dir .. "/?.so")
      shell.run("rm -rf " .. shell.quote(dir))
      assert.is_false(ok)
      assert.matches("C core (module sentry.core) is not installed for", out, 1, true)
      assert.matches("make LUA=" .. lua, out, 1, true)
      assert.not_matches("module 'sentry.core' not found", out, 1, true)
    end)
  end)

  -- #caller_line: the secrecy run (spec/hosts/secrecy) wraps sentry.new, so
  -- there the caller's line is the wrapper's; it leaves these out.
  describe("option errors name the caller's file and line #caller_line", function()
    local function raised(f)
      local ok, err = pcall(f)
      assert.is_false(ok)
      return tostring(err)
    end

    it("a misspelled option, with the name it was probably meant to be", function()
      local line
      local err = raised(function()
        line = debug.getinfo(1, "l").currentline + 1
        local client = sentry.new { tokn = tokens.user_full, config = false }
        return client
      end)
      assert.matches("^spec/packaging_spec%.lua:" .. line .. ": ", err)
      assert.matches("unknown option 'tokn' (did you mean 'token'?)", err, 1, true)
      assert.not_matches(tokens.user_full, err, 1, true)
    end)

    it("an option of the wrong type, from sentry.new and from sentry.config.resolve", function()
      local line
      local err = raised(function()
        line = debug.getinfo(1, "l").currentline + 1
        local client = sentry.new { token = tokens.user_full, timeout = "30", config = false }
        return client
      end)
      assert.matches("^spec/packaging_spec%.lua:" .. line .. ": option 'timeout' must be a number, got string", err)
      err = raised(function()
        line = debug.getinfo(1, "l").currentline + 1
        local values = sentry.config.resolve { max_retries = 1.5, config = false }
        return values
      end)
      assert.matches("^spec/packaging_spec%.lua:" .. line .. ": option 'max_retries' must be a whole number", err)
    end)

    it("a hook that is not a function, and options that are not a table", function()
      local line
      local err = raised(function()
        line = debug.getinfo(1, "l").currentline + 1
        local client = sentry.new { token = tokens.user_full, hooks = { on_retry = true }, config = false }
        return client
      end)
      assert.matches("^spec/packaging_spec%.lua:" .. line .. ": sentry.new: hooks.on_retry must be a function", err)
      err = raised(function()
        line = debug.getinfo(1, "l").currentline + 1
        local client = sentry.new(tokens.user_full)
        return client
      end)
      assert.matches("^spec/packaging_spec%.lua:" .. line .. ": sentry.new expects a table of options", err)
      assert.not_matches(tokens.user_full, err, 1, true)
    end)

    it("a name far from every option gets no guess", function()
      local err = raised(function()
        local client = sentry.new { completely_unrelated = 1, config = false }
        return client
      end)
      assert.matches("unknown option 'completely_unrelated'", err, 1, true)
      assert.not_matches("did you mean", err, 1, true)
    end)
  end)

  describe("the API reference (make docs)", function()
    local dir, log, built
    setup(function()
      dir = scratch_dir()
      log = shell.capture("ldoc --fatalwarnings -d " .. shell.quote(dir) .. " . 2>&1; echo \"exit=$?\"")
      built = log:match("exit=0%s*$") ~= nil
    end)
    teardown(function() shell.run("rm -rf " .. shell.quote(dir)) end)

    it("lists the client's public methods, and no private ones", function()
      assert(built, log)
      local page = assert(shell.read_file(dir .. "/classes/sentry.Client.html"))
      for _, method in ipairs { "request", "get", "post", "put", "patch", "delete", "head", "paginate", "pages",
          "collect", "batch", "async", "request_async", "batch_async", "whoami", "can", "rate_limit", "close" } do
        assert.matches('name = "sentry.Client:' .. method .. '"', page, 1, true)
      end
      assert.not_matches('name = "sentry.Client:_', page, 1, true)
    end)

    it("has no pages for internal modules, and renders markdown", function()
      assert(built, log)
      for _, internal in ipairs { "exchange", "scheduler", "json", "ini", "links", "cosocket", "core_loader", "batch" } do
        assert.is_nil(shell.read_file(dir .. "/modules/sentry." .. internal .. ".html"), internal)
      end
      local page = assert(shell.read_file(dir .. "/modules/sentry.html"))
      assert.matches("<li><code>transport</code>", page, 1, true)
      assert.matches('<code>&quot;rate_limit_remaining&quot;</code>', page, 1, true)
      assert.matches('name = "VERSION"', page, 1, true)
    end)
  end)

  describe("building the core", function()
    -- -Wconversion stands for whatever a newer compiler starts to warn about.
    it("a plain make survives a new warning; DEV=1 (tests, CI) makes it an error", function()
      local dir = scratch_dir()
      local user_log, user_built = build_core(lua, dir, "DEV= CFLAGS='-O2 -Wconversion'")
      local dev_log, dev_built = build_core(lua, dir .. "/dev", "DEV=1 CFLAGS='-O2 -Wconversion'")
      shell.run("rm -rf " .. shell.quote(dir))
      assert.matches("Wconversion", user_log, 1, true)
      assert(user_built, user_log)
      assert.is_false(dev_built, dev_log)
      assert.matches("-Werror", dev_log, 1, true)
    end)
  end)
end)
