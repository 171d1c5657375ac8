-- Sentry's scope hierarchy: a granted scope implies the ones listed for it.

local scopes = {}

local IMPLIES = {
  ["org:admin"] = { "org:read", "org:write", "org:admin", "org:integrations" },
  ["org:write"] = { "org:read", "org:write" },
  ["member:admin"] = { "member:read", "member:invite", "member:write", "member:admin" },
  ["member:write"] = { "member:read", "member:invite", "member:write" },
  ["member:invite"] = { "member:read", "member:invite" },
  ["alerts:write"] = { "alerts:read", "alerts:write" },
}
for _, resource in ipairs({ "team", "project", "event" }) do
  IMPLIES[resource .. ":admin"] = { resource .. ":read", resource .. ":write", resource .. ":admin" }
  IMPLIES[resource .. ":write"] = { resource .. ":read", resource .. ":write" }
end

-- The sorted, de-duplicated closure of granted, as GET /api/0/ reports it.
function scopes.expand(granted)
  local set, list = {}, {}
  for _, scope in ipairs(granted) do
    for _, implied in ipairs(IMPLIES[scope] or { scope }) do
      if not set[implied] then
        set[implied] = true
        list[#list + 1] = implied
      end
    end
  end
  table.sort(list)
  return list
end

-- Endpoints list the scopes of which any one suffices.
function scopes.any_of(expanded, allowed)
  for _, have in ipairs(expanded) do
    for _, wanted in ipairs(allowed) do
      if have == wanted then return true end
    end
  end
  return false
end

return scopes
