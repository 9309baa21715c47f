-- spec/34-proxy_env_spec.lua: the proxy environment. libcurl reads
-- http_proxy/https_proxy/all_proxy/no_proxy on every transfer; the client
-- skips those lookups (CURLOPT_PROXY "") only when none of them is set as
-- it is made (src/transport.c), so a proxy in the environment is still
-- used. Each case runs a fresh lua5.4 with its own environment.
-- The "proxy" is the sandbox itself: nginx serves a request whose target
-- is an absolute URL, so a call to a port where nothing listens succeeds
-- only if it went through the proxy.
local H = require "spec.helper"

local q = H.shell_quote

-- one create in a child process with env assignments; -> "ok" or the kind
local function create_with_env(env, base_url)
    local code = H.uniq("proxy")
    local script = ([[
local c = assert(require("mediquo").new{ api_key = %q, secret_key = %q,
    base_url = %q, rate_limit = false, timeout = 3, connect_timeout = 1,
    deadline = 4, max_retries = 0 })
local a, err = c:create{ code = %q, starts_at = "2030-05-20T10:00:00Z",
    patient = "pat-1", professional = "prof-demo-1" }
io.write(a and "ok" or err.kind)
]]):format(H.api_key, H.secret_key, base_url, code)
    local assigns = {}
    for k, v in pairs(env) do assigns[#assigns + 1] = k .. "=" .. q(v) end
    -- every proxy variable the parent may have is dropped first
    local out = H.run(("env -u http_proxy -u HTTP_PROXY -u https_proxy -u HTTPS_PROXY "
        .. "-u all_proxy -u ALL_PROXY -u no_proxy -u NO_PROXY %s lua5.4 -e %s 2>&1")
        :format(table.concat(assigns, " "), q(script)))
    return out, code
end

describe("the proxy environment", function()
    local sb, dead
    setup(function()
        sb = H.sandbox{}
        dead = "http://127.0.0.1:" .. H.free_port() .. "/v1"
    end)
    before_each(function() sb:reset() end)

    it("without proxy variables the client goes direct (nothing listens at the dead port)", function()
        local out = create_with_env({}, dead)
        assert.equal("network", out)
        assert.same({}, sb:log())
    end)

    it("uses http_proxy when it is set as the client is made", function()
        local out, code = create_with_env({ http_proxy = sb.url }, dead)
        assert.equal("ok", out)
        assert.truthy(sb:state()[code], "the create did not go through the proxy")
    end)

    it("uses all_proxy too, and no_proxy still sends the host direct", function()
        local out = create_with_env({ all_proxy = sb.url }, dead)
        assert.equal("ok", out)
        sb:reset()
        out = create_with_env({ http_proxy = sb.url, no_proxy = "127.0.0.1" }, dead)
        assert.equal("network", out)
        assert.same({}, sb:log())
    end)
end)
