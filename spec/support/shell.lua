-- Running commands and touching files from test support code, the same way on
-- Lua 5.1 through 5.4 (plain io and os only).
local shell = {}

--- Quotes a value for a POSIX shell command line.
function shell.quote(s)
  return "'" .. (tostring(s):gsub("'", "'\\''")) .. "'"
end

--- Runs a command; true when it exited 0. os.execute returns a status number in
-- Lua 5.1 and LuaJIT without 5.2 compat, and true|nil, "exit", code from 5.2 on.
function shell.run(command)
  local first, _, code = os.execute(command)
  if type(first) == "number" then return first == 0 end
  return first == true and (code == nil or code == 0)
end

--- A command's standard output.
function shell.capture(command)
  local pipe = assert(io.popen(command, "r"))
  local out = pipe:read("*a")
  pipe:close()
  return out
end

--- A file's contents, or nil when it cannot be read.
function shell.read_file(path)
  local file = io.open(path, "rb")
  if not file then return nil end
  local text = file:read("*a")
  file:close()
  return text
end

function shell.write_file(path, text)
  local file = assert(io.open(path, "wb"))
  assert(file:write(text))
  file:close()
end

return shell
