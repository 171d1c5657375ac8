-- The route table and the two nginx entry points: handle() (content phase) and
-- finish() (log phase).
-- luacheck: globals ngx

local admin = require "fake_sentry.admin"
local api = require "fake_sentry.api"
local auth = require "fake_sentry.auth"
local control = require "fake_sentry.control"
local ratelimit = require "fake_sentry.ratelimit"
local request = require "fake_sentry.request"
local respond = require "fake_sentry.respond"
local state = require "fake_sentry.state"

local unpack = table.unpack or unpack -- luacheck: ignore 143

local router = {}

-- Each route: a path pattern, its handlers by method ("*": any method), and a
-- kind. "api" routes are Sentry-shaped: authenticated (unless public) and rate
-- limited; "control" routes drive tests; "admin" routes inspect the server.
local ROUTES = {
  { kind = "api", name = "root", public = true, pattern = "^/api/0/$",
    methods = { GET = api.root } },
  { kind = "api", name = "organizations", pattern = "^/api/0/organizations/$",
    methods = { GET = api.list_organizations } },
  { kind = "api", name = "organization", pattern = "^/api/0/organizations/([^/]+)/$",
    methods = { GET = api.get_organization } },
  { kind = "api", name = "organization-projects", pattern = "^/api/0/organizations/([^/]+)/projects/$",
    methods = { GET = api.list_projects } },
  { kind = "api", name = "organization-issues", pattern = "^/api/0/organizations/([^/]+)/issues/$",
    methods = { GET = api.list_issues } },
  { kind = "api", name = "user-regions", pattern = "^/api/0/users/me/regions/$",
    methods = { GET = api.user_regions } },
  { kind = "api", name = "project", pattern = "^/api/0/projects/([^/]+)/([^/]+)/$",
    methods = { GET = api.get_project, PUT = api.update_project, DELETE = api.delete_project } },
  { kind = "api", name = "project-releases", pattern = "^/api/0/projects/([^/]+)/([^/]+)/releases/$",
    methods = { POST = api.create_release } },

  { kind = "control", pattern = "^/api/0/fake/echo/", methods = { ["*"] = control.echo } },
  { kind = "control", pattern = "^/api/0/fake/status/(%d+)/?$", methods = { ["*"] = control.status } },
  { kind = "control", pattern = "^/api/0/fake/flaky/([^/]+)/?$", methods = { ["*"] = control.flaky } },
  { kind = "control", pattern = "^/api/0/fake/limited/([^/]+)/?$", methods = { ["*"] = control.limited } },
  { kind = "control", pattern = "^/api/0/fake/slow/?$", methods = { GET = control.slow } },
  { kind = "control", pattern = "^/api/0/fake/items/?$", methods = { GET = control.items } },
  { kind = "control", pattern = "^/api/0/fake/chunked/?$", methods = { GET = control.chunked } },
  { kind = "control", pattern = "^/api/0/fake/big/?$", methods = { GET = control.big } },
  { kind = "control", pattern = "^/api/0/fake/invalid%-json/?$", methods = { GET = control.invalid_json } },
  { kind = "control", pattern = "^/api/0/fake/text/?$", methods = { GET = control.text } },
  { kind = "control", pattern = "^/api/0/fake/moved/?$", methods = { ["*"] = control.moved } },
  { kind = "control", pattern = "^/api/0/fake/redirect%-offsite/?$",
    methods = { ["*"] = control.redirect_offsite } },
  { kind = "control", pattern = "^/api/0/fake/huge%-header/?$", methods = { GET = control.huge_header } },
  { kind = "control", pattern = "^/api/0/fake/garbage%-header/?$",
    methods = { GET = control.garbage_header } },
  { kind = "control", pattern = "^/api/0/fake/hostile/([%w%-]+)/?$", methods = { GET = control.hostile } },
  { kind = "control", pattern = "^/api/0/fake/close/?$", methods = { ["*"] = control.close } },
  { kind = "control", pattern = "^/api/0/fake/resource/?$", methods = { GET = control.resource } },
  { kind = "control", pattern = "^/api/0/fake/echo%-token/?$", methods = { ["*"] = control.echo_token } },
  { kind = "control", pattern = "^/api/0/fake/cut%-headers/?$", methods = { GET = control.cut_headers } },
  { kind = "control", pattern = "^/api/0/fake/truncated/?$", methods = { GET = control.truncated } },
  { kind = "control", pattern = "^/api/0/fake/reset/?$", methods = { GET = control.reset } },
  { kind = "control", pattern = "^/api/0/fake/overlong/?$", methods = { GET = control.overlong } },
  { kind = "control", pattern = "^/api/0/fake/concurrency/?$", methods = { GET = control.concurrency } },
  { kind = "control", pattern = "^/api/0/fake/drip/?$", methods = { GET = control.drip } },
  { kind = "control", pattern = "^/api/0/fake/endless/?$", methods = { GET = control.endless } },
  { kind = "control", pattern = "^/api/0/fake/interim/?$", methods = { GET = control.interim } },
  { kind = "control", pattern = "^/api/0/fake/hangup%-next/?$", methods = { GET = control.hangup_next } },

  { kind = "admin", pattern = "^/__fake/stats/?$", methods = { GET = admin.stats } },
  { kind = "admin", pattern = "^/__fake/reset/?$", methods = { POST = admin.reset } },
  { kind = "admin", pattern = "^/__fake/requests/(.+)$", methods = { GET = admin.requests } },
}

local function match(path)
  for _, route in ipairs(ROUTES) do
    local captures = { path:match(route.pattern) }
    if captures[1] ~= nil then
      -- A pattern without captures yields the whole match; drop it.
      if not route.pattern:find("(", 1, true) then captures = {} end
      return route, captures
    end
  end
end

local function handler_for(route, method)
  local methods = route.methods
  -- As in Django, HEAD is answered by the GET view (nginx drops the body).
  return methods[method] or methods["*"] or (method == "HEAD" and methods.GET) or nil
end

local function method_not_allowed(req)
  respond.abort(405, { detail = string.format('Method "%s" not allowed.', req.method) })
end

local function dispatch_api(route, handler, req, captures)
  req.caller = auth.identify(ngx.var.http_authorization)
  -- Limits are per caller; without a valid token the caller is the address.
  local caller_key = req.caller.token or ("ip:" .. ngx.var.remote_addr)
  ratelimit.check_api(caller_key, route.name, req.method)
  if req.caller.error and not route.public then
    respond.abort(401, { detail = req.caller.error })
  end
  if not handler then method_not_allowed(req) end
  return handler(req, unpack(captures))
end

local function dispatch(route, req, captures)
  local handler = handler_for(route, req.method)
  if route.kind == "api" then return dispatch_api(route, handler, req, captures) end
  if not handler then method_not_allowed(req) end
  return handler(req, unpack(captures))
end

local function error_id()
  return string.format("%08x", math.random(0, 0x7fffffff))
end

function router.handle()
  local req = request.current()
  -- /__fake/ requests are the specs looking at the server: keep them out of
  -- the numbers they look at.
  if req.path:sub(1, 8) ~= "/__fake/" then
    state.count_request(req.path, ngx.var.connection, ngx.var.server_addr,
      ngx.var.http_authorization ~= nil)
    state.enter_flight()
    ngx.ctx.in_flight = true
  end

  local route, captures = match(req.path)
  if not route then
    return respond.json(404, { detail = respond.NOT_FOUND })
  end
  local ok, err = pcall(dispatch, route, req, captures)
  if ok then return end
  if respond.is_abort(err) then return respond.send_abort(err) end
  ngx.log(ngx.ERR, "fake sentry handler failed: ", tostring(err))
  return respond.json(500, { detail = "Internal Error", errorId = error_id() })
end

function router.finish()
  if ngx.ctx.in_flight then state.leave_flight() end
  ratelimit.release()
end

return router
