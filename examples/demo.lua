-- A tour of sentry-lua against a real Sentry (SENTRY_AUTH_TOKEN set) or the
-- bundled fake one (`make demo` sets it up). Read-only: it changes nothing.
--
--   SENTRY_AUTH_TOKEN=sntryu_... SENTRY_ORG=acme lua5.4 examples/demo.lua
local sentry = require "sentry"

local function section(title)
  print(("\n== %s"):format(title))
end

local client, err = sentry.new {
  user_agent = "sentry-lua-demo",
  hooks = {
    on_retry = function(info)
      print(("   (retry %d: %s, waiting %.1f s)"):format(info.attempt, info.reason, info.wait))
    end,
  },
}
if not client then
  io.stderr:write(tostring(err), "\n")
  os.exit(1)
end
print(tostring(client))

section("Who am I?")
local me = assert(client:whoami())
print(("token type: %s; %d scopes: %s"):format(me.token_type, #me.scopes, table.concat(me.scopes, " ")))
if me.user then print("user: " .. tostring(me.user.email or me.user.username)) end

if not client.org then
  section("Organizations")
  local orgs = assert(client:collect("/organizations/", { limit = 5 }))
  for _, org in ipairs(orgs) do print(" - " .. org.slug) end
  client.org = orgs[1] and orgs[1].slug
  if not client.org then
    print("no organization visible to this token")
    return
  end
end

section("Projects of " .. client.org .. " (walked page by page)")
local count, pages, shown = 0, 0, 0
for page, res in client:pages("/organizations/{org}/projects/", { per_page = 100 }) do
  pages = pages + 1
  for _, project in ipairs(page) do
    count = count + 1
    if shown < 5 then
      print(" - " .. project.slug)
      shown = shown + 1
    end
  end
  local limit = res.rate_limit
  if limit and pages == 1 then
    print(("   rate limit: %s of %s left, window resets at %s"):format(
      tostring(limit.remaining), tostring(limit.limit), os.date("!%H:%M:%S", limit.reset or 0)))
  end
end
print(("%d projects over %d page(s)"):format(count, pages))

section("Operations by name, checked before they are sent")
local first = {}
for project in client.api.listOrganizationProjects:each { limit = 3 } do first[#first + 1] = project.slug end
print("listOrganizationProjects:each { limit = 3 }: " .. table.concat(first, ", "))
local info = assert(sentry.api.describe("updateOrganizationIssue"))
print(("updateOrganizationIssue is %s %s (%s)"):format(info.method, info.path, info.docs))
-- refused offline: nothing is sent
local _, refused = client.api.updateOrganizationIssue { issue_id = "1", body = { status = "resolvd" } }
print(tostring(refused))
_, refused = client.api.createOrganizationRelease { body = { version = "1.0", projects = {} } }
print(tostring(refused))

section("What the token may do")
for _, call in ipairs { { "GET", "/organizations/{org}/projects/" }, { "DELETE", "/projects/{org}/web/" } } do
  local ok, needs = client:can(call[1], call[2])
  print(("%-6s %-34s %s"):format(call[1], call[2],
    ok and "allowed" or ("needs one of: " .. table.concat(needs or {}, ", "))))
end

local read_only = os.getenv("SENTRY_DEMO_READ_ONLY_TOKEN")
if read_only then
  section("A clear 403 (the fake server's read-only token deleting a project)")
  local limited = assert(sentry.new { token = read_only })
  local _, denied = limited:delete("/projects/{org}/project-001/")
  print(tostring(denied))
  limited:close()
end

client:close()
