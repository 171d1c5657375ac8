--- `client:batch`: many requests at once over the client's connections, each
-- with the same retry and rate-limit rules as `client:request`.
-- @module sentry.batch
local core = require "sentry.core_loader"
local DEFAULTS = require("sentry.config").DEFAULTS
local Scheduler = require "sentry.scheduler"

local batch = {}

--- Reads one request of a batch: `{ "GET", "/path/", opts }` or
-- `{ method = "GET", path = "/path/", query = ..., ... }`.
function batch.normalize(request, index)
  if type(request) ~= "table" then
    error(string.format("batch request #%d must be a table like { \"GET\", \"/path/\", opts }", index), 4)
  end
  if request[1] ~= nil then return request[1], request[2], request[3] end
  local opts = {}
  for key, value in pairs(request) do
    if key ~= "method" and key ~= "path" then opts[key] = value end
  end
  return request.method or "GET", request.path, opts
end

function batch.check_options(opts)
  if opts ~= nil and type(opts) ~= "table" then error("batch options must be a table", 4) end
  local concurrency = opts and opts.concurrency or DEFAULTS.concurrency
  if type(concurrency) ~= "number" or concurrency < 1 or concurrency ~= math.floor(concurrency) then
    error("batch option 'concurrency' must be a whole number of at least 1", 4)
  end
  return concurrency
end

--- Prepares every request; results of those that cannot even start are filled in.
-- @return the scheduler, with one exchange queued per valid request
function batch.schedule(client, requests, concurrency, on_done)
  if type(requests) ~= "table" then error("bad argument #1 to 'batch' (a list of requests expected)", 3) end
  local scheduler = Scheduler.new(concurrency, on_done)
  for index, request in ipairs(requests) do
    local method, path, opts = batch.normalize(request, index)
    local exchange, err = client:_prepare(method, path, opts, 5)
    if exchange then scheduler:add(index, exchange) else on_done(index, nil, err) end
  end
  return scheduler
end

-- Runs the scheduler's exchanges on engine until none is left.
local function drive(client, scheduler, engine)
  while not scheduler:finished() do
    local next_due = scheduler:start_ready(engine)
    if engine:in_flight() > 0 then
      engine:perform()
      local completions = engine:completed()
      for _, completion in ipairs(completions) do scheduler:complete(completion) end
      if #completions == 0 then
        local until_due = next_due and math.max(next_due - core.now(), 0) or 1
        engine:wait(math.min(until_due, 1))
      end
    elseif next_due then
      -- nothing in flight: the wait goes through the client's (possibly yielding) sleep
      client._sleep(math.max(next_due - core.now(), 0))
    end
  end
end

--- Runs requests concurrently and waits for all of them.
-- @param client
-- @tparam table requests each `{ method, path, opts }` or `{ method=, path=, query=, ... }`
-- @tparam[opt] table opts `{ concurrency = 10 }`
-- @treturn table one `{ res = ..., err = ... }` per request, in input order
function batch.run(client, requests, opts)
  local concurrency = batch.check_options(opts)
  local results = {}
  local scheduler = batch.schedule(client, requests, concurrency, function(index, res, err)
    results[index] = { res = res, err = err }
  end)
  local carrier = client._transport
  local engine = carrier:engine()
  drive(client, scheduler, engine)
  carrier:engine_done(engine)
  return results
end

--- Sends one request now and returns a function that waits for its answer
-- (`res` or nil, err), with the same retry and rate-limit rules as
-- `client:request`: the caller works while the answer travels. It runs on an
-- engine of its own, so other requests made meanwhile cannot take its
-- completion. Over cosockets the request is simply made when waited for.
function batch.start(client, method, path, opts)
  local carrier = client._transport
  if carrier:over_nginx() then
    return function() return client:request(method, path, opts) end
  end
  local res, err
  local scheduler = batch.schedule(client, { { method, path, opts } }, 1, function(_, r, e) res, err = r, e end)
  local engine = core.new_engine(carrier:curl(), "poll")
  scheduler:start_ready(engine)
  if engine:in_flight() > 0 then engine:perform() end -- puts the request on the wire
  return function()
    drive(client, scheduler, engine)
    engine:close()
    return res, err
  end
end

return batch
