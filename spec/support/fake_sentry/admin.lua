-- Introspection for the specs under /__fake/ (these requests are not counted).

local respond = require "fake_sentry.respond"
local state = require "fake_sentry.state"

local admin = {}

function admin.stats()
  return respond.json(200, state.stats())
end

function admin.reset()
  state.reset()
  return respond.json(200, { ok = true })
end

function admin.requests(_, key)
  return respond.json(200, state.records(key))
end

return admin
