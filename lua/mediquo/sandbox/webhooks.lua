-- The sandbox's organization webhooks: the subscriptions resource
-- (/v1/organizations/webhooks/), and the delivery of appointment events to
-- the subscribed URLs, signed, with redelivery and backoff, from nginx
-- timers over cosockets, to loopback URLs only. Every attempt is recorded
-- for GET /__sandbox/deliveries. Payloads carry made-up medical data, as
-- real ones carry real data: a receiver must keep it out of its logs.
local json = require "mediquo.sandbox.json"
local iso8601 = require "mediquo.sandbox.iso8601"

local ngx = ngx
local type = type
local pairs = pairs
local ipairs = ipairs
local tonumber = tonumber
local tostring = tostring
local next = next
local match, sub, find, format, byte = string.match, string.sub, string.find,
    string.format, string.byte
local concat = table.concat
local md5 = ngx.md5

local _M = { _VERSION = "0.2.0" }

-- subscription type -> delivered event type (mediQuo "Organization Webhooks")
local TYPES = {
    appointment_cancelled = "patient_consultation_cancelled",
    appointment_created = "patient_consultation_created",
    appointment_finished = "patient_consultation_finished",
    appointment_no_showed = "patient_consultation_no_show",
    appointment_rescheduled = "patient_consultation_rescheduled",
    chat_consultation_finished = "patient_consultation_finished",
    immediate_video_call_assigned = "patient_immediate_video_call_assigned",
    message_unread = "patient_message_received",
    patient_message_received = "patient_message_received",
    prescription_created = "prescription_created",
    professional_block_created = "professional_block_created",
    professional_block_deleted = "professional_block_deleted",
    professional_block_updated = "professional_block_updated",
    report_created = "patient_report_sent",
    triage_position_updated = "patient_waiting_room_position_update",
}
_M.TYPES = TYPES

-- what happened to an appointment -> the subscription type that hears it
local SUBSCRIPTION_OF = {
    created = "appointment_created", rescheduled = "appointment_rescheduled",
    cancelled = "appointment_cancelled", finished = "appointment_finished",
    no_show = "appointment_no_showed",
}

local INVALID = "The given data was invalid."
local MAX_ATTEMPTS = 6          -- the first delivery and up to 5 more
local ANSWER_TIMEOUT = 5000     -- ms: no status line by then counts as no answer

local state, ctl
local secret = "sandbox-webhook-secret"
local duplicates = false
local backoff = 1               -- seconds before the first redelivery; doubles

function _M.configure(state_dict, ctl_dict, opts)
    state, ctl = ngx.shared[state_dict], ngx.shared[ctl_dict]
    opts = opts or {}
    if opts.secret and opts.secret ~= "" then secret = opts.secret end
    duplicates = opts.duplicates and true or false
    if opts.backoff_ms then backoff = opts.backoff_ms / 1000 end
end

local function uuid4(seed)
    local h = md5(seed)
    -- version 4, variant 10xx, as the real ids are shaped
    local v = format("%x", 8 + tonumber(sub(h, 17, 17), 16) % 4)
    return sub(h, 1, 8) .. "-" .. sub(h, 9, 12) .. "-4" .. sub(h, 14, 16) .. "-"
           .. v .. sub(h, 18, 20) .. "-" .. sub(h, 21, 32)
end

local function add_error(errors, field, msg)
    local list = errors[field]
    if list then list[#list + 1] = msg else errors[field] = { msg } end
end

local function header_ok(s)
    return type(s) == "string" and s ~= "" and not find(s, "[%c]") and #s <= 1024
end

-- a subscription body checked as mediQuo's 422 describes; sub or nil, errors
local function check(b)
    local errors = {}
    if type(b.type) ~= "string" or b.type == "" then
        add_error(errors, "type", "The type field is required.")
    elseif not TYPES[b.type] then
        add_error(errors, "type", "The selected type is invalid.")
    end
    if type(b.channel) ~= "string" or b.channel == "" then
        add_error(errors, "channel", "The channel field is required.")
    elseif b.channel ~= "http" and b.channel ~= "email" then
        add_error(errors, "channel", "The selected channel is invalid.")
    end
    local meta = b.meta
    if type(meta) ~= "table" then
        add_error(errors, "meta", "The meta field is required.")
        meta = {}
    end
    if b.channel == "http" then
        local url = meta.url
        if url == nil or url == "" then
            add_error(errors, "meta.url", "The meta.url field is required when channel is http.")
        elseif type(url) ~= "string" or not match(url, "^https?://[%w%.%-%[%]:]+[/%?]?[%S]*$")
               or #url > 2048 then
            add_error(errors, "meta.url", "The meta.url must be a valid URL.")
        end
        if meta.headers ~= nil then
            if type(meta.headers) ~= "table" then
                add_error(errors, "meta.headers", "The meta.headers must be an object.")
            else
                for k, v in pairs(meta.headers) do
                    if not header_ok(k) or find(k, "[^%w%-_]") or not header_ok(v) then
                        add_error(errors, "meta.headers", "The meta.headers must map header names to values.")
                        break
                    end
                end
            end
        end
    end
    if next(errors) then return nil, errors end
    local m = { url = meta.url }
    if type(meta.headers) == "table" and next(meta.headers) then m.headers = meta.headers end
    return { type = b.type, channel = b.channel, meta = m }
end

-- parse(body) -> the subscription a POST or PUT body asks for | nil, the
-- 422 answer (not JSON, or fields check refuses)
local function parse(body)
    local b, msg = json.decode_body(body)
    if not b then return nil, { message = INVALID, errors = { body = { msg } } } end
    local s, errors = check(b)
    if not s then return nil, { message = INVALID, errors = errors } end
    return s
end

local function load(id)
    local s = state:get("w:" .. id)
    return s and json.decode(s)
end

local function public(rec)
    return { id = rec.id, type = rec.type, channel = rec.channel, meta = rec.meta }
end

-- every live subscription, in creation order
local function all()
    local out, n = {}, ctl:get("wh:n") or 0
    for i = 1, n do
        local id = ctl:get("wh:i:" .. i)
        local rec = id and load(id)
        if rec and not rec.deleted then out[#out + 1] = rec end
    end
    return out
end

-- /v1/organizations/webhooks/ and /{id}: status, body
function _M.route(method, id, body)
    if id == nil then
        if method == "GET" then
            local list = all()
            if #list == 0 then return 200, '{"data":[]}' end
            local data = {}
            for i, rec in ipairs(list) do data[i] = public(rec) end
            return 200, { data = data }
        elseif method ~= "POST" then
            return 405, { message = "Method Not Allowed." }, { Allow = "GET, POST" }
        end
        local s, bad = parse(body)
        if not s then return 422, bad end
        local n = ctl:incr("wh:n", 1, 0)
        s.id = uuid4(ngx.now() .. ":" .. n .. ":" .. tostring(s) .. ngx.worker.pid())
        local ok = state:safe_set("w:" .. s.id, json.encode_raw(s))
        if not ok then return 507, { message = "Sandbox storage is full; POST /__sandbox/reset." } end
        ctl:set("wh:i:" .. n, s.id)
        return 201, { data = public(s) }
    end
    local rec = load(id)
    if not rec or rec.deleted then
        if method ~= "PUT" and method ~= "DELETE" then
            return 405, { message = "Method Not Allowed." }, { Allow = "PUT, DELETE" }
        end
        return 404, { message = "Organization webhook not found with id: " .. id }
    end
    if method == "DELETE" then
        rec.deleted = true
        state:safe_set("w:" .. id, json.encode_raw(rec))
        return 204, ""
    elseif method ~= "PUT" then
        return 405, { message = "Method Not Allowed." }, { Allow = "PUT, DELETE" }
    end
    local s, bad = parse(body)
    if not s then return 422, bad end
    s.id = id
    state:safe_set("w:" .. id, json.encode_raw(s))
    return 200, { data = public(s) }
end

-- Delivery ---------------------------------------------------------------

local function record(d)
    local n = ctl:incr("dlv:n", 1, 0)
    ctl:safe_set("dlv:" .. n, json.encode_raw(d))
end

function _M.deliveries()
    local out, n = {}, ctl:get("dlv:n") or 0
    for i = 1, n do
        local s = ctl:get("dlv:" .. i)
        if s then out[#out + 1] = json.decode(s) end
    end
    return out
end

local function loopback_host(h)
    return h == "localhost" or match(h, "^127%.%d+%.%d+%.%d+$") or h == "[::1]"
end

-- one attempt: the status (number), or nil and why
local function post(url, headers, body)
    local host, port, path = match(url, "^http://([^/:%?]+):?(%d*)([^#]*)$")
    if not host then
        return nil, "refused: only http:// URLs are delivered by the sandbox"
    end
    if not loopback_host(host) then
        return nil, "refused: not a loopback URL"
    end
    if path == "" then path = "/" end
    if byte(path, 1) ~= 47 then path = "/" .. path end
    local sock = ngx.socket.tcp()
    sock:settimeouts(2000, 5000, ANSWER_TIMEOUT)
    local ok, err = sock:connect(host == "localhost" and "127.0.0.1" or host,
                                 tonumber(port) or 80)
    if not ok then return nil, "connect: " .. tostring(err) end
    local lines = {
        "POST " .. path .. " HTTP/1.1",
        "Host: " .. host .. (port ~= "" and (":" .. port) or ""),
        "User-Agent: mediquo-sandbox-webhooks",
        "Content-Type: application/json",
        "Content-Length: " .. #body,
        "Connection: close",
        "x-webhook-signature: " .. secret,
    }
    for k, v in pairs(headers or {}) do lines[#lines + 1] = k .. ": " .. v end
    lines[#lines + 1] = ""
    lines[#lines + 1] = body
    ok, err = sock:send(concat(lines, "\r\n"))
    if not ok then sock:close(); return nil, "send: " .. tostring(err) end
    local line
    line, err = sock:receive("*l")
    sock:close()
    if not line then return nil, "no answer: " .. tostring(err) end
    local status = tonumber(match(line, "^HTTP/1%.%d (%d%d%d)"))
    if not status then return nil, "not HTTP" end
    return status
end

local deliver

-- a timer: one attempt at one delivery, and the next one scheduled
deliver = function(premature, job)
    if premature then return end
    if ctl:get("wh:gen") ~= job.gen then return end   -- reset since
    local status, why = post(job.url, job.headers, job.body)
    record({ event = job.event, subscription = job.subscription, body_md5 = job.body_md5,
             url = job.url, status = status or 0, error = why, attempt = job.attempt,
             copy = job.copy, time = ngx.now() })
    if (not status or status < 200 or status > 299) and job.attempt < MAX_ATTEMPTS
       and not (why and sub(why, 1, 8) == "refused:") then
        job.attempt = job.attempt + 1
        ngx.timer.at(backoff * 2 ^ (job.attempt - 2), deliver, job)
    end
end

local function generation()
    local g = ctl:get("wh:gen")
    if not g then
        ctl:add("wh:gen", md5(ngx.now() .. ":" .. ngx.worker.pid() .. ":" .. tostring({})))
        g = ctl:get("wh:gen")
    end
    return g
end

-- Made-up medical history, as real payloads carry it: receivers are
-- checked to keep it out of their logs (spec 52 greps for these words).
local function history()
    return {
        allergies = { { id = 1, name = "Sandbox-Penicillin-Allergy", description = "hives" } },
        diseases = { { id = 2, name = "Sandbox-Hypertension-Stage-1", description = nil } },
        medications = { { id = 3, name = "Sandbox-Enalapril-10mg", posology = "10mg/day" } },
    }
end

local function end_of(starts_at, duration)
    local t = iso8601.parse(starts_at)
    return t and iso8601.format(t + (duration or 900)) or starts_at
end

local function payload(what, rec, prev)
    local c = {
        id = uuid4("consultation:" .. rec.code), type = "appointment", channel = "video",
        service_type = "scheduled", consultation_url = rec.url,
        scheduled_start_date = rec.starts_at,
        scheduled_end_date = end_of(rec.starts_at, rec.duration),
        previous_scheduled_start_date = json.null, previous_scheduled_end_date = json.null,
        start_date = json.null, end_date = json.null,
        created_at = rec.created_at or iso8601.format(ngx.time()),
        speciality = { id = 1, name = "General" },
    }
    if prev then
        c.previous_scheduled_start_date = prev.starts_at
        c.previous_scheduled_end_date = end_of(prev.starts_at, prev.duration)
    end
    local patient = history()
    patient.code = rec.patient
    local p = {
        consultation = c, patient = patient,
        professional = { id = rec.professional, name = "Dr. Sandbox Demo", avatar = json.null },
        preconsultation = { reason = "Sandbox-Reason: persistent cough for two weeks",
                            documents = {} },
    }
    if what == "finished" then
        c.start_date = rec.starts_at
        c.end_date = end_of(rec.starts_at, rec.duration)
        p.reports = { { id = uuid4("report:" .. rec.code), type = "soap", content = {
            subjective = "Sandbox-Subjective: dry cough, no fever",
            objective = "Sandbox-Objective: clear lungs on auscultation",
            assessment = "Sandbox-Assessment: viral bronchitis",
            plan = "Sandbox-Plan: rest, fluids, review in 7 days" } } }
        p.prescriptions = { { id = uuid4("rx:" .. rec.code),
                              active_substances = { "sandbox-dextromethorphan" } } }
        p.derivation = json.null
    elseif what ~= "no_show" then
        p.reports, p.prescriptions, p.derivation = {}, {}, json.null
    end
    return p
end

-- emit(what, rec, prev): the event for an appointment record (as the
-- appointments module stores it) to every live http subscription of its type
function _M.emit(what, rec, prev)
    if (ctl:get("wh:n") or 0) == 0 then return 0 end
    local subscription = SUBSCRIPTION_OF[what]
    local event = TYPES[subscription]
    local body, n = nil, 0
    local gen = generation()
    for _, s in ipairs(all()) do
        if s.type == subscription and s.channel == "http" then
            body = body or json.encode({ type = event, occurred_on = ngx.time(),
                                         payload = payload(what, rec, prev) })
            for copy = 1, duplicates and 2 or 1 do
                n = n + 1
                ngx.timer.at(0, deliver, {
                    gen = gen, event = event, subscription = s.id, body_md5 = md5(body),
                    url = s.meta.url, headers = s.meta.headers, body = body,
                    attempt = 1, copy = copy,
                })
            end
        end
    end
    return n
end

return _M
