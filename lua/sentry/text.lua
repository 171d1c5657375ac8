--- Text helpers for input we do not control (responses, config files).
-- Lua patterns such as `"%s+$"` or `"<.->"` backtrack, and take quadratic
-- time on input a hostile server can send (seconds to minutes for 100 KB);
-- these helpers take linear time whatever the input.
-- @module sentry.text
local text = {}

--- Removes trailing characters of a set.
-- @tparam string s
-- @tparam[opt] string set the characters, as inside a pattern's `[]`: `"%s"`
--   (the default) or e.g. `" \t"`
-- @treturn string
function text.trim_end(s, set)
  -- the last kept character, found from the end without backtracking
  local from_end = s:reverse():find("[^" .. (set or "%s") .. "]")
  return from_end and s:sub(1, #s + 1 - from_end) or ""
end

--- Removes leading and trailing characters of a set.
-- @tparam string s
-- @tparam[opt] string set as for `trim_end`
-- @treturn string
function text.trim(s, set)
  local first = s:find("[^" .. (set or "%s") .. "]")
  if not first then return "" end
  return text.trim_end(s:sub(first), set)
end

return text
