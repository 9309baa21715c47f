-- spec/55-webhook_subscriptions_spec.lua: the organization's webhook
-- subscriptions through the engine, from the client, mediquo.ngx and the
-- CLI: the round trip; types, URLs and headers refused before anything is
-- sent; the shared budget; and exactly once: a subscribe whose attempt was
-- processed but answered 500 is settled by listing and never makes two
-- (while a blind re-POST, the control, does), one that was not processed
-- is sent again after the list, and an unsubscribe's 404 after a processed
-- attempt is its own work.
local H = require "spec.helper"
local NH = require "spec.ngx_helper"

local json = H.json
local q = H.shell_quote

local function raw_list(sb)
    local status, body = H.http("GET", sb.base_url .. "/organizations/webhooks/", nil, H.auth())
    assert.equal(200, status)
    return json.decode(body).data
end

local function methods(sb)
    local out = {}
    for _, e in ipairs(sb:api_log()) do
        out[#out + 1] = e.method .. " " .. math.floor(e.status)
    end
    return table.concat(out, ", ")
end

describe("webhook subscriptions through the engine", function()
    local sb, c
    before_each(function()
        sb = H.sandbox{}
        c = H.client({ base_url = sb.base_url, rate_limit = false })
    end)
    after_each(function() c:close() end)

    it("subscribe, list, update, unsubscribe", function()
        local s = assert(c:subscribe{ type = "appointment_finished", url = "https://gw.example/events",
                                      headers = { ["X-Tenant"] = "acme \"q\" /x" } })
        assert.matches("^%x+%-", s.id)
        assert.same({ id = s.id, type = "appointment_finished", channel = "http",
                      meta = { url = "https://gw.example/events",
                               headers = { ["X-Tenant"] = "acme \"q\" /x" } } }, s)
        assert.same({ s }, assert(c:webhooks()))
        local u = assert(c:update_subscription(s.id, { type = "appointment_no_showed",
                                                       url = "http://127.0.0.1:9/ns" }))
        assert.equal(s.id, u.id)
        assert.equal("appointment_no_showed", u.type)
        assert.is_nil(u.meta.headers)
        assert.is_true(c:unsubscribe(s.id))
        assert.same({}, assert(c:webhooks()))
        local _, err = c:unsubscribe(s.id)
        assert.equal("not_found", err.kind)
        assert.equal("none", err.effect)
        _, err = c:update_subscription(s.id, { type = "appointment_created", url = "http://x.example/" })
        assert.equal("not_found", err.kind)
        assert.equal("POST 201, GET 200, PUT 200, DELETE 204, GET 200, DELETE 404, PUT 404",
                     methods(sb))
    end)

    it("refuses a type, a URL or headers before sending anything", function()
        local cases = {
            { { type = "appointment_exploded", url = "https://a.example/" }, "type" },
            { { url = "https://a.example/" }, "type" },
            { { type = "appointment_created" }, "url" },
            { { type = "appointment_created", url = "ftp://a.example/" }, "url" },
            { { type = "appointment_created", url = "https:///path" }, "url" },
            { { type = "appointment_created", url = "https://a.example/a b" }, "url" },
            { { type = "appointment_created", url = "https://a.example/" .. ("x"):rep(600) }, "url" },
            { { type = "appointment_created", url = "https://a.example/", headers = "X: y" }, "headers" },
            { { type = "appointment_created", url = "https://a.example/", headers = { ["X Y"] = "1" } }, "headers" },
            { { type = "appointment_created", url = "https://a.example/", headers = { X = "a\r\nB: c" } }, "headers" },
            { { type = "appointment_created", url = "https://a.example/",
                headers = { A = "1", B = "2", C = "3", D = "4", E = "5" } }, "headers" },
            { { type = "appointment_created", url = "https://a.example/", channel = "email" }, "channel" },
            { { type = "appointment_created", url = "https://a.example/", meta = {} }, "meta" },
        }
        for _, case in ipairs(cases) do
            local s, err = c:subscribe(case[1])
            assert.is_nil(s)
            assert.equal("invalid_argument", err.kind)
            assert.equal(case[2], err.field, err.message)
            assert.equal(0, err.attempts)
            assert.equal("none", err.effect)
        end
        local _, err = c:unsubscribe("..")
        assert.equal("id", err.field)
        _, err = c:update_subscription("abc", nil)
        assert.equal("subscription", err.field)
        assert.equal("", methods(sb))      -- nothing reached the API
    end)

    it("a subscribe processed but answered 500 is settled by listing: one (a blind re-POST makes two)", function()
        -- the control: the same fault, and the POST simply sent again
        local body = json.encode{ type = "appointment_created", channel = "http",
                                  meta = { url = "http://127.0.0.1:9/control" } }
        sb:faults{ next = 1, mode = "after", status = 500 }
        assert.equal(500, (H.http("POST", sb.base_url .. "/organizations/webhooks/", body, H.auth())))
        assert.equal(201, (H.http("POST", sb.base_url .. "/organizations/webhooks/", body, H.auth())))
        assert.equal(2, #raw_list(sb))
        sb:reset()

        sb:faults{ next = 1, mode = "after", status = 500 }
        local s = assert(c:subscribe{ type = "appointment_created", url = "http://127.0.0.1:9/gw" })
        local list = raw_list(sb)
        assert.equal(1, #list)
        assert.equal(list[1].id, s.id)
        assert.equal("POST 500, GET 200, GET 200", methods(sb))   -- the last one: raw_list
    end)

    it("a subscribe not processed (500 before processing) is sent again after the list", function()
        sb:faults{ next = 1, mode = "status", status = 500 }
        local s = assert(c:subscribe{ type = "appointment_cancelled", url = "http://127.0.0.1:9/gw" })
        assert.equal(1, #raw_list(sb))
        assert.equal(s.id, raw_list(sb)[1].id)
        assert.equal("POST 500, GET 200, POST 201, GET 200, GET 200", methods(sb))
    end)

    it("a subscribe that timed out after the server processed it is settled by listing", function()
        local slow = H.client({ base_url = sb.base_url, rate_limit = false, timeout = 0.5, deadline = 10 })
        sb:faults{ next = 1, mode = "delay", ms = 1500, process = "after" }
        local s, err = slow:subscribe{ type = "appointment_rescheduled", url = "http://127.0.0.1:9/gw" }
        slow:close()
        assert.is_truthy(s, tostring(err))
        assert.equal(1, #raw_list(sb))
    end)

    it("an unsubscribe processed but answered 500: the retry's 404 is its own work", function()
        local s = assert(c:subscribe{ type = "report_created", url = "http://127.0.0.1:9/r" })
        sb:faults{ next = 1, mode = "after", status = 500 }
        assert.is_true(c:unsubscribe(s.id))
        assert.same({}, raw_list(sb))
    end)

    it("spends the shared budget like every other call", function()
        local dir = NH.tmpdir("wh-rl")
        local lc = H.client({ base_url = sb.base_url,
                              rate_limit = H.limiter_cfg({ per_minute = 2, period = 60, max_wait = 0 },
                                                         dir, "spec55") })
        assert.truthy(lc:webhooks())
        assert.truthy(lc:subscribe{ type = "appointment_created", url = "http://127.0.0.1:9/b" })
        local v, err = lc:webhooks()
        lc:close()
        H.run("rm -rf " .. q(dir))
        assert.is_nil(v)
        assert.equal("rate_limited", err.kind)
        assert.equal("none", err.effect)
        assert.equal("GET 200, POST 201", methods(sb))
    end)

    it("the CLI: webhooks add, list, update, rm", function()
        local env = "MEDIQUO_SANDBOX_URL=" .. q(sb.base_url) .. " "
        local cli = env .. q(H.root .. "/bin/mediquo") .. " --sandbox --no-rate-limit "
        local out, code = H.run(cli .. "webhooks add appointment_finished http://127.0.0.1:9/cli "
                                .. "--header X-Tenant:acme 2>&1")
        assert.equal(0, code, out)
        local id = out:match("^(%S+)  appointment_finished  http://127.0.0.1:9/cli")
        assert.truthy(id, out)
        out, code = H.run(cli .. "--json webhooks list 2>&1")
        assert.equal(0, code)
        local s = json.decode(out)
        assert.equal(id, s.id)
        assert.equal("acme", s.meta.headers["X-Tenant"])
        out, code = H.run(cli .. "webhooks update " .. id .. " appointment_no_showed http://127.0.0.1:9/x 2>&1")
        assert.equal(0, code, out)
        out, code = H.run(cli .. "webhooks rm " .. id .. " 2>&1")
        assert.equal(0, code, out)
        out, code = H.run(cli .. "webhooks rm " .. id .. " 2>&1")
        assert.equal(1, code)
        assert.truthy(out:find("not_found", 1, true))
        out, code = H.run(cli .. "webhooks add appointment_exploded http://x.example/ 2>&1")
        assert.equal(1, code)
        assert.truthy(out:find("invalid_argument", 1, true))
        out, code = H.run(cli .. "webhooks add appointment_created 2>&1")
        assert.equal(2, code, out)
    end)
end)

describe("webhook subscriptions from mediquo.ngx (real nginx)", function()
    local sb, gw, conf
    setup(function()
        sb = H.sandbox{}
        conf = NH.conf_variant(function(c)
            return (c:gsub("(location = /health)", [[location = /spec/subscribe {
            content_by_lua_block {
                local mq = require "mediquo.ngx"
                local cjson = require "cjson"
                local s, err = mq.subscribe{ type = "appointment_created", url = ngx.var.arg_url }
                local list = mq.webhooks()
                ngx.say(cjson.encode{ id = s and s.id, kind = err and err.kind, n = list and #list })
            }
        }
        %1]], 1))
        end)
        gw = NH.gateway(sb, { workers = 1, conf = conf })
    end)
    teardown(function()
        if gw then gw:stop() end
        if conf then os.remove(conf) end
    end)

    it("subscribes and lists; a processed-but-500 subscribe is settled by listing", function()
        local status, body = gw:get("/spec/subscribe?url=http://127.0.0.1:9/a")
        assert.equal(200, status)
        local r = json.decode(body)
        assert.truthy(r.id)
        assert.equal(1, r.n)
        sb:faults{ next = 1, mode = "after", status = 500 }
        status, body = gw:get("/spec/subscribe?url=http://127.0.0.1:9/b")
        assert.equal(200, status)
        r = json.decode(body)
        assert.truthy(r.id, body)
        assert.equal(2, r.n)
        assert.equal(2, #raw_list(sb))
    end)
end)

describe("settle-by-listing in the engine alone (the step API, a fake clock, no socket)", function()
    local core = require "mediquo.core"
    -- cjson writes "/" as "\/" in the lists below: compared unescaped
    local SUB = { type = "appointment_created", url = "https://gw.example/ev/x?t=1" }

    local function engine()
        return assert(core.engine{ base_url = "http://127.0.0.1:9/v1", timeout = 3, connect_timeout = 1,
                                   deadline = 30, max_retries = 2, api_key = "key-AbCd1234",
                                   secret_key = "s3cr3t-AbCdEfGh" })
    end

    local function list_of(...)
        return json.encode{ data = { ... } }
    end

    local function sub(id, typ, url)
        return { id = id, type = typ, channel = "http", meta = { url = url } }
    end

    -- a subscribe whose POST timed out after sending: -> the call, at its next request
    local function ambiguous_post(e)
        local call, action = e:start("subscribe", SUB, nil, 0)
        assert.equal("send", action)
        local m, path, body = call:request()
        assert.equal("POST", m)
        assert.equal("/v1/organizations/webhooks/", path)
        assert.same({ type = SUB.type, channel = "http", meta = { url = SUB.url } }, json.decode(body))
        assert.equal("backoff", (call:failure("timeout", "timed out after sending", 1)))
        assert.equal("send", (call:wake(2)))
        m, path, body = call:request()
        assert.equal("GET", m)
        assert.equal("/v1/organizations/webhooks/", path)
        assert.is_nil(body)
        return call
    end

    it("ours in the list (same type and URL, compared unescaped): done with it, no second POST", function()
        local call = ambiguous_post(engine())
        local list = list_of(sub("other-type", "appointment_finished", SUB.url),
                             sub("other-url", SUB.type, "https://gw.example/other"),
                             sub("mine", SUB.type, SUB.url))
        assert.equal("done", (call:response({ status = 200, body = list }, 3)))
        local v = assert(call:result())
        assert.equal("mine", json.decode(v).id)
    end)

    it("not in the list: the same POST again, in the same call", function()
        local call = ambiguous_post(engine())
        assert.equal("send", (call:response({ status = 200,
                                              body = list_of(sub("x", SUB.type, "https://y.example/")) }, 3)))
        local m, _, body = call:request()
        assert.equal("POST", m)
        assert.equal(SUB.url, json.decode(body).meta.url)
        assert.equal("done", (call:response({ status = 201,
                                              body = json.encode{ data = sub("new", SUB.type, SUB.url) } }, 4)))
        assert.equal("new", json.decode((call:result())).data.id)
    end)

    it("with max_retries = 1 the POST after the list still goes (as a create's confirm does)", function()
        local e = assert(core.engine{ base_url = "http://127.0.0.1:9/v1", timeout = 3, connect_timeout = 1,
                                      deadline = 30, max_retries = 1 })
        local call = e:start("subscribe", SUB, nil, 0)
        assert.equal("backoff", (call:failure("reset", "reset after sending", 1)))
        assert.equal("send", (call:wake(2)))
        assert.equal("GET", (call:request()))
        assert.equal("send", (call:response({ status = 200, body = '{"data":[]}' }, 3)))
        assert.equal("POST", (call:request()))
        assert.equal("done", (call:response({ status = 500, body = '{"message":"x"}' }, 4)))
        local _, err = call:result()
        assert.equal("server_error", err.kind)
        assert.equal("unknown", err.effect)
        assert.equal(3, err.attempts)
    end)

    it("a list that cannot be read: bad_response, effect unknown", function()
        local call = ambiguous_post(engine())
        assert.equal("done", (call:response({ status = 200, body = "<html>" }, 3)))
        local v, err = call:result()
        assert.is_nil(v)
        assert.equal("bad_response", err.kind)
        assert.equal("unknown", err.effect)
    end)

    it("a 503 (not processed) is retried as a POST, no list needed; a 422 is not retried", function()
        local e = engine()
        local call = e:start("subscribe", SUB, nil, 0)
        assert.equal("backoff", (call:response({ status = 503, body = '{"message":"busy"}' }, 1)))
        assert.equal("send", (call:wake(2)))
        assert.equal("POST", (call:request()))
        call = e:start("subscribe", SUB, nil, 10)
        assert.equal("done", (call:response({ status = 422,
                                              body = json.encode{ message = "The given data was invalid.",
                                                                  errors = { ["meta.url"] = { "bad" } } } },
                                             11)))
        local _, err = call:result()
        assert.equal("unprocessable", err.kind)
        assert.same({ "bad" }, err.fields["meta.url"])
        assert.equal("none", err.effect)
    end)
end)
