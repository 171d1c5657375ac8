--- "Did you mean ...?": the valid name closest to a wrong one, for the
-- messages of misspelled options, operations, parameters and fields.
-- @module sentry.suggest
local suggest = {}

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

-- Does `candidate` hold the words of `name` in order ("updateIssue" in
-- "updateOrganizationIssue")? Words are split at capitals and underscores.
local function holds_words(candidate, name)
  local from = 1
  for word in name:gsub("(%u)", "_%1"):lower():gmatch("[^_]+") do
    local _, last = candidate:find(word, from, true)
    if not last then return false end
    from = last + 1
  end
  return true
end

local function better(candidate, score, best, best_score)
  return not best or score < best_score or (score == best_score and candidate < best)
end

--- The candidate closest to `name`: a typo or two away (case ignored), or
-- else the shortest candidate holding the name's words in order.
-- @tparam string name what was given
-- @tparam table candidates an array of valid names
-- @treturn ?string the closest, or nil when none is close
function suggest.closest(name, candidates)
  if type(name) ~= "string" or name == "" then return nil end
  local lowered = name:lower()
  local best, best_distance, by_words
  for _, candidate in ipairs(candidates) do
    local lower_candidate = candidate:lower()
    local distance = edit_distance(lowered, lower_candidate)
    local allowed = math.max(2, math.floor(#candidate / 5))
    if distance <= allowed and distance < #candidate / 2 and better(candidate, distance, best, best_distance) then
      best, best_distance = candidate, distance
    elseif #name >= 4 and holds_words(lower_candidate, name)
        and better(candidate, #candidate, by_words, by_words and #by_words) then
      by_words = candidate
    end
  end
  return best or by_words
end

--- `" (did you mean 'x'?)"` for the closest candidate, else `""`.
-- @tparam string name
-- @tparam table candidates an array of valid names
-- @tparam[opt] string prefix written before the suggestion, e.g. `"body."`
-- @treturn string
function suggest.hint(name, candidates, prefix)
  local best = suggest.closest(name, candidates)
  return best and " (did you mean '" .. (prefix or "") .. best .. "'?)" or ""
end

return suggest
