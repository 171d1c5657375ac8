--- Sentry's API scopes: their names, descriptions and hierarchy.
--
-- A token's scopes decide which endpoints it may call. Sentry expands a
-- granted scope into the scopes it implies (`org:admin` also grants
-- `org:read`, `org:write` and `org:integrations`), and an endpoint accepts a
-- request when the expanded set holds ANY ONE of the endpoint's scopes.
-- @module sentry.scopes

local scopes = {}

-- Each description says what a token holding the scope may do. The 17 scopes
-- on Sentry's auth page carry its words exactly; the others follow in its style.
local DESCRIPTIONS = {
  ["org:read"] = "Read organization data, members, and settings",
  ["org:write"] = "Modify organization settings and configuration",
  ["org:admin"] = "Full administrative access to the organization",
  ["project:read"] = "Read project data and configuration",
  ["project:write"] = "Create and modify projects",
  ["project:admin"] = "Delete projects and manage project keys",
  ["project:releases"] = "Create and manage releases and deploys",
  ["team:read"] = "Read team membership and settings",
  ["team:write"] = "Create and modify teams",
  ["team:admin"] = "Delete teams",
  ["event:read"] = "Read issues and events",
  ["event:write"] = "Update and resolve issues",
  ["event:admin"] = "Delete issues and events",
  ["member:read"] = "Read organization member data",
  ["member:write"] = "Invite and manage organization members",
  ["alerts:read"] = "Read alert rules",
  ["alerts:write"] = "Create and modify alert rules",

  ["org:integrations"] = "Install and manage organization integrations",
  ["member:admin"] = "Remove organization members and manage their roles",
  ["member:invite"] = "Invite members to the organization",
  ["org:ci"] = "Create releases and upload source maps and debug files (organization auth tokens)",
  ["project:distribution"] = "Access app distribution and preprod artifacts",
  ["openid"] = "Confirm who is signed in (OAuth)",
  ["profile"] = "Read the user's name, avatar, and join date (OAuth; needs openid)",
  ["email"] = "Read the user's email address and its verification status (OAuth; needs openid)",
}

-- What each scope grants, itself included (Sentry's
-- SENTRY_SCOPE_HIERARCHY_MAPPING). Scopes not listed grant only themselves.
local GRANTS = {
  ["org:write"] = { "org:read", "org:write" },
  ["org:admin"] = { "org:read", "org:write", "org:admin", "org:integrations" },
  ["member:invite"] = { "member:read", "member:invite" },
  ["member:write"] = { "member:read", "member:invite", "member:write" },
  ["member:admin"] = { "member:read", "member:invite", "member:write", "member:admin" },
  ["team:write"] = { "team:read", "team:write" },
  ["team:admin"] = { "team:read", "team:write", "team:admin" },
  ["project:write"] = { "project:read", "project:write" },
  ["project:admin"] = { "project:read", "project:write", "project:admin" },
  ["event:write"] = { "event:read", "event:write" },
  ["event:admin"] = { "event:read", "event:write", "event:admin" },
  ["alerts:write"] = { "alerts:read", "alerts:write" },
}

local function sorted_keys(map)
  local keys = {}
  for key in pairs(map) do
    keys[#keys + 1] = key
  end
  table.sort(keys)
  return keys
end

--- Every scope Sentry knows, sorted by name.
scopes.ALL = sorted_keys(DESCRIPTIONS)

--- Description of each scope, keyed by scope name.
scopes.DESCRIPTIONS = DESCRIPTIONS

local function check_list(value, position, function_name)
  if type(value) ~= "table" then
    error(("bad argument #%d to '%s' (table expected, got %s)")
      :format(position, function_name, type(value)), 3)
  end
end

-- The names in `list` that are not scopes, sorted and without duplicates.
local function unknown_names(list)
  local unknown = {}
  for _, name in ipairs(list) do
    if DESCRIPTIONS[name] == nil then
      unknown[tostring(name)] = true
    end
  end
  return sorted_keys(unknown)
end

local function unknown_error(unknown)
  local noun = #unknown == 1 and "unknown scope: " or "unknown scopes: "
  return noun .. table.concat(unknown, ", ")
end

--- Tell whether a name is one of Sentry's scopes.
-- @param scope any value; non-strings are never scopes
-- @return true or false
function scopes.is_known(scope)
  return type(scope) == "string" and DESCRIPTIONS[scope] ~= nil
end

--- Describe a scope in a short phrase.
-- @param scope string, e.g. "org:read"
-- @return the description, or nil and an error message for an unknown scope
function scopes.describe(scope)
  if type(scope) ~= "string" then
    error(("bad argument #1 to 'describe' (string expected, got %s)"):format(type(scope)), 2)
  end
  local description = DESCRIPTIONS[scope]
  if description == nil then
    return nil, unknown_error({ scope })
  end
  return description
end

--- Expand scopes by Sentry's hierarchy into every scope they grant.
-- @param list array of scope names, e.g. { "org:admin" }
-- @return sorted array without duplicates, e.g. { "org:admin",
--   "org:integrations", "org:read", "org:write" }; or nil and an error
--   message naming every unknown scope in `list`
function scopes.expand(list)
  check_list(list, 1, "expand")
  local unknown = unknown_names(list)
  if #unknown > 0 then
    return nil, unknown_error(unknown)
  end
  local granted = {}
  for _, name in ipairs(list) do
    for _, implied in ipairs(GRANTS[name] or { name }) do
      granted[implied] = true
    end
  end
  return sorted_keys(granted)
end

--- Tell whether granted scopes allow a call that needs any one of `any_of`.
-- `granted` is expanded by the hierarchy first, so { "org:admin" } satisfies
-- { "org:read" }. An empty `any_of` needs nothing and is always satisfied.
-- Unknown scope names are an error, never a silent match or a silent miss:
-- a caller holding scopes from a newer Sentry should filter them through
-- `is_known` first.
-- @param granted array of scope names the token holds
-- @param any_of array of scope names of which one suffices
-- @return true; or false and the sorted list of missing candidates (the
--   token needs one of them); or nil and an error message when either list
--   names an unknown scope
function scopes.satisfies(granted, any_of)
  check_list(granted, 1, "satisfies")
  check_list(any_of, 2, "satisfies")
  local both = {}
  for _, name in ipairs(granted) do both[#both + 1] = name end
  for _, name in ipairs(any_of) do both[#both + 1] = name end
  local unknown = unknown_names(both)
  if #unknown > 0 then
    return nil, unknown_error(unknown)
  end
  local expanded = scopes.expand(granted)
  if #any_of == 0 then
    return true
  end
  local have = {}
  for _, name in ipairs(expanded) do
    have[name] = true
  end
  local missing = {}
  for _, candidate in ipairs(any_of) do
    if have[candidate] then
      return true
    end
    missing[candidate] = true
  end
  return false, sorted_keys(missing)
end

return scopes
