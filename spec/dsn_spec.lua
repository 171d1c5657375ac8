-- luacheck: std +busted
local dsn = require "sentry.dsn"

describe("sentry.dsn", function()
  describe("parse", function()
    it("takes apart a SaaS DSN with its org id", function()
      local d = assert(dsn.parse("https://abc123@o4501.ingest.sentry.io/4505"))
      assert.same({
        public_key = "abc123",
        scheme = "https",
        host = "o4501.ingest.sentry.io",
        port = 443,
        path = "",
        project_id = "4505",
        org_id = "4501",
        envelope_url = "https://o4501.ingest.sentry.io/api/4505/envelope/",
      }, d)
    end)

    it("reads the data region from a regional ingest host", function()
      local d = assert(dsn.parse("https://abc@o77.ingest.de.sentry.io/9"))
      assert.equal("77", d.org_id)
      assert.equal("de", d.region)
      d = assert(dsn.parse("https://abc@o77.ingest.us.sentry.io/9"))
      assert.equal("us", d.region)
    end)

    it("has no org id for hosts that are not SaaS ingest hosts", function()
      local d = assert(dsn.parse("https://abc@sentry.example.com/3"))
      assert.is_nil(d.org_id)
      assert.is_nil(d.region)
      d = assert(dsn.parse("https://abc@o1.ingest.sentry.io.evil.example/3"))
      assert.is_nil(d.org_id)
    end)

    it("accepts the legacy public:secret form", function()
      local d = assert(dsn.parse("https://pub:sec@sentry.example.com/12"))
      assert.equal("pub", d.public_key)
      assert.equal("sec", d.secret_key)
      assert.equal("12", d.project_id)
    end)

    it("treats an empty secret as no secret", function()
      local d = assert(dsn.parse("https://pub:@sentry.example.com/12"))
      assert.is_nil(d.secret_key)
    end)

    it("keeps a port and a path prefix in the envelope URL", function()
      local d = assert(dsn.parse("https://key@host.example:9000/sentry/prefix/42"))
      assert.equal(9000, d.port)
      assert.equal("/sentry/prefix", d.path)
      assert.equal("42", d.project_id)
      assert.equal("https://host.example:9000/sentry/prefix/api/42/envelope/", d.envelope_url)
    end)

    it("leaves a default port out of the envelope URL", function()
      local d = assert(dsn.parse("http://key@localhost:80/1"))
      assert.equal(80, d.port)
      assert.equal("http://localhost/api/1/envelope/", d.envelope_url)
    end)

    it("accepts an IPv6 host", function()
      local d = assert(dsn.parse("http://key@[::1]:9000/5"))
      assert.equal("[::1]", d.host)
      assert.equal("http://[::1]:9000/api/5/envelope/", d.envelope_url)
    end)

    it("normalises scheme and host case, tolerates a trailing slash and ignores a query", function()
      local d = assert(dsn.parse("HTTPS://key@Sentry.Example.COM/8/?timeout=3#x"))
      assert.equal("https", d.scheme)
      assert.equal("sentry.example.com", d.host)
      assert.equal("8", d.project_id)
    end)

    local bad = {
      { "", "DSN is empty" },
      { "https://key@host/1\n", "whitespace or a control character at position 19" },
      { "key@host/1", "must start with http:// or https://" },
      { "ftp://key@host/1", "scheme must be http or https, got ftp" },
      { "https://host.example/1", "no public key" },
      { "https://@host.example/1", "empty public key" },
      { "https://:secret@host.example/1", "empty public key" },
      { "https://key@/1", "no host" },
      { "https://key@host:port/1", "port must be a number" },
      { "https://key@host:70000/1", "port must be between 1 and 65535" },
      { "https://key@host", "no project id" },
      { "https://key@host/", "no project id" },
      { "https://key@host/my-project", "project id must be numeric, got my-project" },
      { "https://key@[zz]/1", "IPv6" },
    }
    for _, case in ipairs(bad) do
      it("says what is wrong with " .. (case[1]:gsub("\n", "\\n")), function()
        local d, message = dsn.parse(case[1])
        assert.is_nil(d)
        assert.is_truthy(message:find(case[2], 1, true), message)
      end)
    end

    it("never repeats the keys in its error messages", function()
      local _, message = dsn.parse("https://publickey0123:secretkey0123@host.example/notanumber")
      assert.is_falsy(message:find("publickey0123", 1, true))
      assert.is_falsy(message:find("secretkey0123", 1, true))
    end)

    it("raises for a non-string argument", function()
      assert.has_error(function() dsn.parse(nil) end,
        "bad argument #1 to 'parse' (string expected, got nil)")
    end)
  end)

  describe("looks_like", function()
    it("recognises DSNs, including malformed ones", function()
      assert.is_true(dsn.looks_like("https://abc@o1.ingest.sentry.io/2"))
      assert.is_true(dsn.looks_like("http://pub:sec@localhost:9000"))
      assert.is_true(dsn.looks_like("  https://abc@host"))
    end)

    it("does not mistake tokens or plain URLs for DSNs", function()
      assert.is_false(dsn.looks_like("sntryu_" .. string.rep("ab", 32)))
      assert.is_false(dsn.looks_like("https://sentry.io/api/0/"))
      assert.is_false(dsn.looks_like("https://sentry.io/path/with@sign"))
      assert.is_false(dsn.looks_like(nil))
    end)
  end)
end)
