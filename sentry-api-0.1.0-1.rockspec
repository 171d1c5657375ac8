rockspec_format = "3.0"
package = "sentry-api"
version = "0.1.0-1"
source = {
   url = "git+https://github.com/sentry-lua/sentry-lua.git",
   tag = "v0.1.0"
}
description = {
   summary = "A client for the Sentry REST API: bearer auth, regions, scopes, rate-limit backoff, pagination",
   detailed = [[
    require "sentry" gives a client that authenticates with a Sentry auth token,
    knows Sentry's token kinds, regions and scopes, backs off on rate limits and
    walks paginated lists with plain for loops. A small C core on libcurl does the
    HTTP; a thin Lua layer gives iterators and the table API.
  ]],
   license = "MIT",
   labels = {
      "sentry",
      "http",
      "api",
      "libcurl"
   }
}
dependencies = {
   "lua >= 5.1, < 5.5",
   "lua-cjson >= 2.1"
}
external_dependencies = {
   CURL = {
      library = "curl"
   }
}
build = {
   type = "builtin",
   modules = {
      sentry = "lua/sentry/init.lua",
      ["sentry.async"] = "lua/sentry/async.lua",
      ["sentry.batch"] = "lua/sentry/batch.lua",
      ["sentry.client"] = "lua/sentry/client.lua",
      ["sentry.config"] = "lua/sentry/config.lua",
      ["sentry.core"] = {
         incdirs = {
            "$(CURL_INCDIR)"
         },
         libdirs = {
            "$(CURL_LIBDIR)"
         },
         libraries = {
            "curl"
         },
         sources = {
            "src/client.c",
            "src/core.c",
            "src/headers.c",
            "src/ratelimit.c",
            "src/timeutil.c",
            "src/transfer.c",
            "src/engine.c",
            "src/object.c",
            "src/json.c",
            "src/links.c",
            "src/digest.c"
         }
      },
      ["sentry.core_loader"] = "lua/sentry/core_loader.lua",
      ["sentry.cosocket"] = "lua/sentry/cosocket.lua",
      ["sentry.dsn"] = "lua/sentry/dsn.lua",
      ["sentry.endpoint_data"] = "lua/sentry/endpoint_data.lua",
      ["sentry.endpoint_memory"] = "lua/sentry/endpoint_memory.lua",
      ["sentry.endpoints"] = "lua/sentry/endpoints.lua",
    ["sentry.api"] = "lua/sentry/api.lua",
    ["sentry.operation_data"] = "lua/sentry/operation_data.lua",
    ["sentry.validate"] = "lua/sentry/validate.lua",
      ["sentry.errors"] = "lua/sentry/errors.lua",
      ["sentry.exchange"] = "lua/sentry/exchange.lua",
      ["sentry.health"] = "lua/sentry/health.lua",
      ["sentry.ini"] = "lua/sentry/ini.lua",
      ["sentry.json"] = "lua/sentry/json.lua",
      ["sentry.links"] = "lua/sentry/links.lua",
      ["sentry.paginate"] = "lua/sentry/paginate.lua",
      ["sentry.properties"] = "lua/sentry/properties.lua",
      ["sentry.scheduler"] = "lua/sentry/scheduler.lua",
      ["sentry.scopes"] = "lua/sentry/scopes.lua",
      ["sentry.text"] = "lua/sentry/text.lua",
      ["sentry.token"] = "lua/sentry/token.lua",
      ["sentry.admission"] = "lua/sentry/admission.lua",
      ["sentry.budget_stores"] = "lua/sentry/budget_stores.lua",
      ["sentry.governor"] = "lua/sentry/governor.lua",
      ["sentry.redis_store"] = "lua/sentry/redis_store.lua",
      ["sentry.transport"] = "lua/sentry/transport.lua",
      ["sentry.url"] = "lua/sentry/url.lua"
   }
}
test = {
   type = "busted"
}
