--- Text helpers for input we do not control (responses, config files).
-- Lua patterns such as `"%s+$"` or `"<.->"` backtrack, and take quadratic
-- time on input a hostile server can send (seconds to minutes for 100 KB);
-- these helpers take linear time whatever the input.
-- @module sentry.text
local text = {}

--- Removes leading and trailing characters of a set.
-- @tparam string s
-- @tparam[opt] string set the characters, as inside a pattern's `[]`: `"%s"`
--   (the default) or e.g. `" \t"`
-- @treturn string
function text.trim(s, set)
  local kept = "[^" .. (set or "%s") .. "]"
  local first = s:find(kept)
  if not first then return "" end
  -- the last kept character, found from the end without backtracking
  local last = #s + 1 - s:reverse():find(kept)
  return s:sub(first, last)
end

return text
