-- spec/53-webhook_parse_spec.lua: mediquo.webhook.parse from plain Lua (no
-- nginx): a good event, each refusal with its kind and a message naming the
-- field, never the body or a secret; the order size -> signature -> JSON;
-- secrets in rotation; the id as SHA-256 of the body (checked against the
-- openssl command line).
local mediquo = require "mediquo"
local core = require "mediquo.core"
local H = require "spec.helper"

local parse = mediquo.webhook.parse
local SECRET = "s3cr3t-current"
local MEDICAL = "Penicillin-allergy-Hypertension"

local function body_of(t)
    return H.json.encode(t)
end

local GOOD = body_of{
    type = "patient_consultation_finished", occurred_on = 1715000000,
    payload = { consultation = { id = "c-1", consultation_url = "https://x/call/1" },
                patient = { code = "P1", allergies = { { name = MEDICAL } } } },
}

local function sig(v) return { ["x-webhook-signature"] = v } end

-- the message and every field of an error, as one string
local function all_text(err)
    local parts = { tostring(err) }
    for k, v in pairs(err) do parts[#parts + 1] = tostring(k) .. "=" .. tostring(v) end
    return table.concat(parts, " ")
end

describe("mediquo.webhook.parse", function()
    it("returns the event: type, occurred_on, payload, id", function()
        local ev = assert(parse{ headers = sig(SECRET), body = GOOD, secret = SECRET })
        assert.equal("patient_consultation_finished", ev.type)
        assert.equal(1715000000, ev.occurred_on)
        assert.equal("P1", ev.payload.patient.code)
        assert.equal("https://x/call/1", ev.payload.consultation.consultation_url)
        assert.matches("^%x+$", ev.id)
        assert.equal(64, #ev.id)
    end)

    it("the id is the body's SHA-256: the same for a redelivery, another for another body", function()
        local path = os.tmpname()
        H.write_file(path, GOOD)
        local want = H.run("openssl dgst -sha256 -r " .. H.shell_quote(path)):match("^(%x+)")
        os.remove(path)
        local a = assert(parse{ headers = sig(SECRET), body = GOOD, secret = SECRET })
        local b = assert(parse{ headers = { ["X-Webhook-Signature"] = SECRET }, body = GOOD,
                                secret = { "other", SECRET } })
        assert.equal(want, a.id)
        assert.equal(a.id, b.id)
        local c = assert(parse{ headers = sig(SECRET), body = GOOD .. " ", secret = SECRET })
        assert.not_equal(a.id, c.id)
    end)

    it("a bad or missing signature is unauthorized, naming the header, never the secret", function()
        for _, h in ipairs{ sig("wrong"), sig(SECRET .. "x"), sig(SECRET:sub(1, -2)), sig(""), {},
                            { ["x-webhook-signature"] = { SECRET, SECRET } } } do
            local ev, err = parse{ headers = h, body = GOOD, secret = SECRET }
            assert.is_nil(ev)
            assert.equal("unauthorized", err.kind)
            assert.equal(false, err.retryable)
            assert.truthy(err.message:find("x-webhook-signature", 1, true))
            assert.is_nil(all_text(err):find(SECRET, 1, true))
            assert.is_nil(all_text(err):find(MEDICAL, 1, true))
        end
    end)

    it("accepts any secret of a rotation, and a header of another name when told", function()
        assert.truthy(parse{ headers = sig("old"), body = GOOD, secret = { SECRET, "old" } })
        assert.truthy(parse{ headers = sig(SECRET), body = GOOD, secret = { SECRET, "old" } })
        assert.truthy(parse{ headers = { ["X-Hook-Token"] = SECRET }, body = GOOD, secret = SECRET,
                             header = "x-hook-token" })
        local _, err = parse{ headers = sig(SECRET), body = GOOD, secret = SECRET, header = "x-hook-token" }
        assert.equal("unauthorized", err.kind)
    end)

    it("the size comes first: over max_body is too_large, even unsigned", function()
        local _, err = parse{ headers = {}, body = GOOD, secret = SECRET, max_body = #GOOD - 1 }
        assert.equal("too_large", err.kind)
        assert.equal(false, core.KINDS.too_large)
        assert.truthy(parse{ headers = sig(SECRET), body = GOOD, secret = SECRET, max_body = #GOOD })
    end)

    it("a malformed event is invalid_argument naming the field, never quoting the body", function()
        local cases = {
            { "not json " .. MEDICAL, "body" },
            { "[1,2]", "type" },
            { '"' .. MEDICAL .. '"', "body" },
            { body_of{ occurred_on = 1, payload = {} }, "type" },
            { body_of{ type = MEDICAL .. " x", occurred_on = 1, payload = {} }, "type" },
            { body_of{ type = "t", payload = {} }, "occurred_on" },
            { body_of{ type = "t", occurred_on = "1715000000", payload = {} }, "occurred_on" },
            { body_of{ type = "t", occurred_on = 1.5, payload = {} }, "occurred_on" },
            { body_of{ type = "t", occurred_on = 1, payload = MEDICAL }, "payload" },
            { body_of{ type = "t", occurred_on = 1 }, "payload" },
            { ("["):rep(200) .. ("]"):rep(200), "body" },
        }
        for _, c in ipairs(cases) do
            local ev, err = parse{ headers = sig(SECRET), body = c[1], secret = SECRET }
            assert.is_nil(ev, c[1])
            assert.equal("invalid_argument", err.kind, c[1])
            assert.equal(c[2], err.field, c[1])
            assert.is_nil(all_text(err):find(MEDICAL, 1, true))
        end
    end)

    it("bad options are invalid_argument naming the option", function()
        local function field(o)
            local ev, err = parse(o)
            assert.is_nil(ev)
            assert.equal("invalid_argument", err.kind)
            return err.field
        end
        assert.equal("secret", field{ headers = {}, body = GOOD })
        assert.equal("secret", field{ headers = {}, body = GOOD, secret = "" })
        assert.equal("secret", field{ headers = {}, body = GOOD, secret = {} })
        assert.equal("secret", field{ headers = {}, body = GOOD, secret = { "a", 2 } })
        assert.equal("secret", field{ headers = {}, body = GOOD,
                                      secret = { "1", "2", "3", "4", "5", "6", "7", "8", "9" } })
        assert.equal("max_body", field{ headers = {}, body = GOOD, secret = "s", max_body = 0 })
        assert.equal("max_body", field{ headers = {}, body = GOOD, secret = "s", max_body = 1.5 })
        assert.equal("header", field{ headers = {}, body = GOOD, secret = "s", header = "" })
        assert.equal("headers", field{ body = GOOD, secret = "s" })
        assert.equal("body", field{ headers = {}, secret = "s" })
        assert.equal("opts", field(nil))
    end)
end)
