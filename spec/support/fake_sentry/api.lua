-- Handlers for the real-shaped routes under /api/0/. The router has already
-- identified the caller (req.caller), answered 401s and applied rate limits.
-- Lookups come before scope checks, as in Sentry: an unknown organization is a
-- 404 even for a token that could not have read it.

local auth = require "fake_sentry.auth"
local fixtures = require "fake_sentry.fixtures"
local json = require "fake_sentry.json"
local pagination = require "fake_sentry.pagination"
local respond = require "fake_sentry.respond"
local scopes = require "fake_sentry.scopes"
local state = require "fake_sentry.state"

local api = {}

-- Any one of these suffices (endpoints.tsv, from Sentry's OpenAPI schema).
local ORG_READ = { "org:admin", "org:read", "org:write" }
local EVENT_READ = { "event:admin", "event:read", "event:write" }
local PROJECT_READ = { "project:admin", "project:read", "project:write" }
local PROJECT_WRITE = { "project:admin", "project:write" }
local PROJECT_ADMIN = { "project:admin" }
local RELEASE_WRITE = { "org:ci", "project:admin", "project:releases", "project:write" }

-- Fields a project PUT may change. Without project:write, Sentry lets a
-- project:read token change only its own bookmark and subscription.
local UPDATABLE_PROJECT_FIELDS = {
  name = "string", slug = "string", platform = "string",
  isBookmarked = "boolean", isSubscribed = "boolean",
  resolveAge = "number", subjectPrefix = "string",
}
local PERSONAL_PROJECT_FIELDS = { isBookmarked = true, isSubscribed = true }

local function copy(t)
  local out = {}
  for k, v in pairs(t) do out[k] = v end
  return out
end

local function require_scopes(req, allowed)
  if not scopes.any_of(req.caller.scopes, allowed) then respond.forbidden() end
end

local function require_user(req)
  if not auth.is_user(req.caller) then respond.forbidden() end
end

local function find_organization(req, id_or_slug)
  local org = fixtures.organization(id_or_slug) or respond.not_found()
  -- An organization token reaches only the organization it was minted for.
  if req.caller.kind == "org" and req.caller.org ~= org.summary.slug then
    respond.forbidden()
  end
  return org
end

local function find_project(org, id_or_slug)
  return fixtures.project(org, id_or_slug) or respond.not_found()
end

-- GET /api/0/: always 200; tells who the token belongs to and what it may do.
function api.root(req)
  local caller = req.caller
  local body = { version = "0", auth = json.null, user = json.null }
  if not caller.error then
    body.auth = { scopes = json.array(copy(caller.scopes)) }
    if auth.is_user(caller) then body.user = auth.USER end
  end
  return respond.json(200, body)
end

function api.list_organizations(req)
  require_scopes(req, ORG_READ)
  local summaries = {}
  for i, org in ipairs(fixtures.organizations) do summaries[i] = org.summary end
  return respond.json(200, pagination.paginate_list(req.origin, req.args, summaries))
end

function api.get_organization(req, org_id)
  local org = find_organization(req, org_id)
  require_scopes(req, ORG_READ)
  local body = copy(org.summary)
  -- This server is its own region, and has no per-organization subdomains.
  body.links = { organizationUrl = req.origin, regionUrl = req.origin }
  body.access = json.array(copy(req.caller.scopes))
  return respond.json(200, body)
end

function api.user_regions(req)
  require_user(req)
  return respond.json(200, { regions = json.array({ { name = "us", url = req.origin } }) })
end

function api.list_projects(req, org_id)
  local org = find_organization(req, org_id)
  require_scopes(req, ORG_READ)
  return respond.json(200, pagination.paginate_list(req.origin, req.args, fixtures.projects(org)))
end

function api.list_issues(req, org_id)
  local org = find_organization(req, org_id)
  require_scopes(req, EVENT_READ)
  local page = pagination.paginate(req.origin, req.args, #org.issues, function(i)
    local issue = copy(org.issues[i])
    issue.permalink = string.format("%s/organizations/%s/issues/%s/",
      req.origin, org.summary.slug, issue.id)
    return issue
  end)
  return respond.json(200, page)
end

local function project_details(org, project)
  local body = copy(project)
  body.organization = { id = org.summary.id, slug = org.summary.slug, name = org.summary.name }
  return body
end

function api.get_project(req, org_id, project_id)
  local org = find_organization(req, org_id)
  local project = find_project(org, project_id)
  require_scopes(req, PROJECT_READ)
  return respond.json(200, project_details(org, project))
end

local function validate_project_changes(req, project, changes)
  local elevated = scopes.any_of(req.caller.scopes, PROJECT_WRITE)
  local accepted, errors = {}, nil
  for field, value in pairs(changes) do
    local expected = UPDATABLE_PROJECT_FIELDS[field]
    if expected then
      if not elevated and not PERSONAL_PROJECT_FIELDS[field] then respond.forbidden() end
      if type(value) ~= expected or value == "" then
        errors = errors or {}
        errors[field] = json.array({ "Invalid value." })
      elseif field == "slug" and value ~= project.slug then
        -- Renames would need redirects from the old slug; not modelled here.
        errors = errors or {}
        errors[field] = json.array({ "The fake server cannot rename projects." })
      else
        accepted[field] = value
      end
    end
  end
  if errors then respond.abort(400, errors) end
  return accepted
end

-- Unknown fields are ignored, as Sentry's serializers ignore them.
function api.update_project(req, org_id, project_id)
  local org = find_organization(req, org_id)
  local project = find_project(org, project_id)
  require_scopes(req, PROJECT_READ)
  local changes = validate_project_changes(req, project, req:json_object())
  local updated = fixtures.update_project(org, project, changes)
  return respond.json(200, project_details(org, updated))
end

function api.delete_project(req, org_id, project_id)
  local org = find_organization(req, org_id)
  local project = find_project(org, project_id)
  require_scopes(req, PROJECT_ADMIN)
  fixtures.delete_project(org, project)
  return respond.raw(204)
end

local function validate_version(version)
  local problem
  if version == nil or version == json.null then
    problem = "This field is required."
  elseif type(version) ~= "string" then
    problem = "Not a valid string."
  elseif version == "" then
    problem = "This field may not be blank."
  end
  if problem then respond.abort(400, { version = json.array({ problem }) }) end
end

local function optional(value)
  if value == nil then return json.null end
  return value
end

-- 201 with the new release; 208 with the existing one when the version is
-- already known (what Sentry does too).
function api.create_release(req, org_id, project_id)
  local org = find_organization(req, org_id)
  local project = find_project(org, project_id)
  require_scopes(req, RELEASE_WRITE)
  local body = req:json_object()
  validate_version(body.version)

  local key = string.format("release:%s/%s/%s", org.summary.slug, project.slug, body.version)
  local existing = state.get_json(key)
  if existing then return respond.json(208, existing) end

  local release = {
    id = state.incr("release:ids"),
    version = body.version,
    shortVersion = body.version,
    ref = optional(body.ref),
    url = optional(body.url),
    dateCreated = os.date("!%Y-%m-%dT%H:%M:%S.000000Z"),
    dateReleased = optional(body.dateReleased),
    status = "open",
    newGroups = 0,
    commitCount = 0,
    deployCount = 0,
    data = {},
    projects = json.array({ { id = project.id, slug = project.slug, name = project.name,
                              platform = project.platform, newGroups = 0 } }),
  }
  state.set_json(key, release)
  return respond.json(201, release)
end

return api
