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

-- How many single-letter edits turn `a` into `b` (Levenshtein distance).
local function edit_distance(a, b)
  local previous = {}
  for j = 0, #b do previous[j] = j end
  for i = 1, #a do
    local current = { [0] = i }
    for j = 1, #b do
      local substitution = previous[j - 1] + (a:byte(i) == b:byte(j) and 0 or 1)
      current[j] = math.min(previous[j] + 1, current[j - 1] + 1, substitution)
    end
    previous = current
  end
  return previous[#b]
end

-- Does `candidate` (lower case) hold the words of `name` in order
-- ("updateIssue" in "updateorganizationissue")? Words split at capitals and "_".
local function holds_words(candidate, name)
  local from = 1
  for word in name:gsub("(%u)", "_%1"):lower():gmatch("[^_]+") do
    local _, last = candidate:find(word, from, true)
    if not last then return false end
    from = last + 1
  end
  return true
end

--- The name a typo most likely meant: the key of `names` a few edits away
-- from `name` (two, or one per five characters of a longer name; less than
-- half its length), the alphabetically first of the nearest; else the
-- shortest key holding the words of a `name` of 4 or more characters in
-- order (`updateIssue` -> `updateOrganizationIssue`); nil when none is that close.
-- @tparam string name
-- @tparam table names a set: `{ [name] = anything }`
-- @treturn ?string
function text.closest(name, names)
  local best, best_distance, by_words
  for candidate in pairs(names) do
    local allowed = math.max(2, math.floor(#candidate / 5))
    -- the lengths alone bound the distance from below: skip the quadratic work
    local distance = math.abs(#name - #candidate) <= allowed and edit_distance(name, candidate) or math.huge
    if distance <= allowed and distance < #candidate / 2 and (not best
        or distance < best_distance or (distance == best_distance and candidate < best)) then
      best, best_distance = candidate, distance
    elseif #name >= 4 and #name <= 2 * #candidate and holds_words(candidate:lower(), name)
        and (not by_words or #candidate < #by_words or (#candidate == #by_words and candidate < by_words)) then
      by_words = candidate
    end
  end
  return best or by_words
end

return text
