--- What a governor remembers per endpoint key in this process (the latest
-- rate-limit state a response reported, for `client:rate_limit`), with
-- bounded size. Catalogue endpoints are a fixed few and always kept. Other
-- paths are keyed by the path itself, so a script or a server's next links
-- can make any number of them: only the most recently used are kept, between
-- `RECENT` and twice that many. The budgets themselves live in the store.
-- @module sentry.endpoint_memory
local endpoint_memory = {}

--- Other paths kept in each of the two generations.
endpoint_memory.RECENT = 128

local Memory = {}
Memory.__index = Memory

--- A new, empty memory.
-- @treturn table with `get(key)` and `set(key, value, pinned)`
function endpoint_memory.new()
  return setmetatable({ pinned = {}, recent = {}, older = {}, recent_count = 0 }, Memory)
end

-- Two generations: when the recent one is full it becomes the older one and
-- the previous older one is dropped; a hit in the older one moves back.
function Memory:remember(key, value)
  if self.recent_count >= endpoint_memory.RECENT then
    self.older, self.recent, self.recent_count = self.recent, {}, 0
  end
  self.recent[key] = value
  self.recent_count = self.recent_count + 1
end

--- The value for a key, or nil.
function Memory:get(key)
  local value = self.pinned[key] or self.recent[key]
  if value == nil then
    value = self.older[key]
    if value ~= nil then self:remember(key, value) end
  end
  return value
end

--- Sets the value for a key; `pinned` (a catalogue endpoint) keeps it for good.
function Memory:set(key, value, pinned)
  if pinned then
    self.pinned[key] = value
  elseif self.recent[key] ~= nil then
    self.recent[key] = value
  else
    self:remember(key, value)
  end
end

return endpoint_memory
