-- The fake organizations, projects and issues, plus the edits made to projects
-- through PUT and DELETE (kept in the shared dict, so a reset undoes them).
--
-- "acme" has 250 projects and 120 issues (several pages at per_page=100);
-- "empty" has none. Everything is derived from the index, so runs are repeatable.

local json = require "fake_sentry.json"
local state = require "fake_sentry.state"

local fixtures = {}

local EPOCH = 1700000000 -- 2023-11-14T22:13:20Z
local PLATFORMS = { "python", "javascript", "lua", "go", "native" }
local LEVELS = { "error", "warning", "error", "fatal", "info" }

local function timestamp(seconds)
  return os.date("!%Y-%m-%dT%H:%M:%S.000000Z", EPOCH + seconds)
end
fixtures.timestamp = timestamp

local function copy(t)
  local out = {}
  for k, v in pairs(t) do out[k] = v end
  return out
end

local function make_project(index)
  return {
    id = tostring(1000 + index),
    slug = string.format("project-%03d", index),
    name = string.format("Project %03d", index),
    platform = PLATFORMS[(index - 1) % #PLATFORMS + 1],
    dateCreated = timestamp(index * 3600),
    isBookmarked = false,
    isMember = true,
    hasAccess = true,
    status = "active",
    features = json.array({ "releases" }),
    firstEvent = json.null,
  }
end

local function make_issue(index, project)
  return {
    id = tostring(5000 + index),
    shortId = string.format("%s-%d", project.slug:upper(), index),
    title = string.format("Error #%d: something went wrong", index),
    culprit = string.format("app.module_%d in handler", index % 7),
    level = LEVELS[(index - 1) % #LEVELS + 1],
    status = "unresolved",
    type = "error",
    -- Sentry sends count as a string and userCount as a number.
    count = tostring(index * 3),
    userCount = index % 5,
    firstSeen = timestamp(index * 60),
    lastSeen = timestamp(index * 60 + 3600),
    isBookmarked = false,
    hasSeen = false,
    numComments = 0,
    project = { id = project.id, slug = project.slug, name = project.name,
                platform = project.platform },
  }
end

local function make_organization(id, slug, name, project_count, issue_count)
  local org = {
    summary = {
      id = id, slug = slug, name = name,
      dateCreated = timestamp(0),
      status = { id = "active", name = "active" },
      isEarlyAdopter = false,
      require2FA = false,
      avatar = { avatarType = "letter_avatar", avatarUuid = json.null },
      features = json.array(),
    },
    projects = {},
    project_by_slug = {},
    issues = {},
  }
  for i = 1, project_count do
    local project = make_project(i)
    org.projects[i] = project
    org.project_by_slug[project.slug] = project
  end
  for i = 1, issue_count do
    org.issues[i] = make_issue(i, org.projects[(i - 1) % project_count + 1])
  end
  return org
end

fixtures.organizations = {
  make_organization("1", "acme", "Acme", 250, 120),
  make_organization("2", "empty", "Empty Org", 0, 0),
}

local by_slug = {}
for _, org in ipairs(fixtures.organizations) do by_slug[org.summary.slug] = org end

-- Organizations are looked up by slug or id, like Sentry's {organization_id_or_slug}.
function fixtures.organization(id_or_slug)
  local org = by_slug[id_or_slug]
  if org then return org end
  for _, candidate in ipairs(fixtures.organizations) do
    if candidate.summary.id == id_or_slug then return candidate end
  end
end

local function project_key(org, project)
  return "project:" .. org.summary.slug .. "/" .. project.slug
end

local function find_static_project(org, id_or_slug)
  local project = org.project_by_slug[id_or_slug]
  if project then return project end
  for _, candidate in ipairs(org.projects) do
    if candidate.id == id_or_slug then return candidate end
  end
end

local function current(org, project)
  local key = project_key(org, project)
  if state.get(key .. ":deleted") then return nil end
  local merged = copy(project)
  for field, value in pairs(state.get_json(key) or {}) do merged[field] = value end
  return merged
end

-- The project as it is now (edits applied), or nil if unknown or deleted.
function fixtures.project(org, id_or_slug)
  local project = find_static_project(org, id_or_slug)
  return project and current(org, project)
end

function fixtures.projects(org)
  local list = {}
  for _, project in ipairs(org.projects) do
    list[#list + 1] = current(org, project)
  end
  return list
end

function fixtures.update_project(org, project, changes)
  local key = project_key(org, project)
  local saved = state.get_json(key) or {}
  for field, value in pairs(changes) do saved[field] = value end
  state.set_json(key, saved)
  return fixtures.project(org, project.id)
end

function fixtures.delete_project(org, project)
  state.set(project_key(org, project) .. ":deleted", true)
end

return fixtures
