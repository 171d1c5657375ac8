-- A server on a Redis port that does not answer like Redis running our script:
-- what a wrong port, a proxy or a broken server looks like to the Redis store.
--
--   lua hostile_redis.lua MODE PORT
--
-- MODE: "ok" answers +OK to every command; "spin" loads the script but answers
-- every step ["ask_again", "0"]; "drip" sends the start of an array reply and
-- then one byte every 50 ms, never ending it; "huge" announces a 10 MB string
-- and sends it. Serves one connection at a time, for ever (the spec kills it).
local socket = require "socket"

local mode, port = arg[1], tonumber(arg[2])
local server = assert(socket.bind("127.0.0.1", port))

-- One command: an array of bulk strings, or nil when the peer went away.
local function read_command(client)
  local line = client:receive("*l")
  if not line then return nil end
  local count = tonumber(line:match("^%*(%d+)"))
  if not count then return nil end
  local args = {}
  for i = 1, count do
    local header = client:receive("*l")
    local length = header and tonumber(header:match("^%$(%d+)"))
    if not length then return nil end
    local data = client:receive(length + 2)
    if not data then return nil end
    args[i] = data:sub(1, length)
  end
  return args
end

local function bulk(text)
  return "$" .. #text .. "\r\n" .. text .. "\r\n"
end

local SHA = string.rep("ab", 20)

local function serve(client)
  while true do
    local command = read_command(client)
    if not command then return end
    local name = command[1]:upper()
    if mode == "ok" then
      client:send("+OK\r\n")
    elseif name == "SCRIPT" then
      client:send(bulk(SHA))
    elseif mode == "spin" then
      client:send("*3\r\n" .. bulk("ask_again") .. bulk("0") .. bulk("probe"))
    elseif mode == "drip" then
      client:send("*3\r\n")
      for _ = 1, 2000 do
        if not client:send("$") then return end
        socket.sleep(0.05)
      end
      return
    elseif mode == "huge" then
      local chunk = string.rep("x", 65536)
      client:send("$" .. 160 * #chunk .. "\r\n")
      for _ = 1, 160 do
        if not client:send(chunk) then return end
      end
      client:send("\r\n")
    end
  end
end

while true do
  local client = server:accept()
  if client then
    client:settimeout(30)
    serve(client)
    client:close()
  end
end
