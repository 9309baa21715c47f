-- The appointments resource: create, reschedule, cancel and the /call/ page,
-- with the validation and the state rules the sandbox models. Handlers take
-- plain values and return status, body table: the server module does HTTP.

local json = require "mediquo.sandbox.json"
local iso8601 = require "mediquo.sandbox.iso8601"

local ngx = ngx
local type = type
local next = next
local floor = math.floor
local md5 = ngx.md5
local ipairs = ipairs

local _M = { _VERSION = "0.2.0" }

local PROFESSIONALS = {
    ["prof-demo-1"] = true,
    ["prof-demo-2"] = true,
    ["prof-demo-3"] = true,
    -- the hash in the mediQuo documentation's example request
    ["mediquo_professional_code"] = true,
}

local MAX_CODE = 255
local INVALID = "The given data was invalid."

local state, seq_dict, seed

function _M.configure(state_dict, ctl_dict, token_seed)
    state = ngx.shared[state_dict]
    seq_dict = ngx.shared[ctl_dict]
    seed = token_seed
end

local function add_error(errors, field, msg)
    local list = errors[field]
    if list then
        list[#list + 1] = msg
    else
        errors[field] = { msg }
    end
end

local function object(v)
    if type(v) == "table" then
        return v
    end
    return nil
end

local function check_string(errors, field, v)
    if v == nil or v == json.null then
        add_error(errors, field, "The " .. field .. " field is required.")
    elseif type(v) ~= "string" then
        add_error(errors, field, "The " .. field .. " must be a string.")
    elseif v == "" then
        add_error(errors, field, "The " .. field .. " field is required.")
    elseif #v > MAX_CODE then
        add_error(errors, field, "The " .. field .. " may not be greater than "
                                 .. MAX_CODE .. " characters.")
    else
        return v
    end
end

local function check_starts_at(errors, v)
    local field = "appointment.starts_at"
    if v == nil or v == json.null then
        add_error(errors, field, "The " .. field .. " field is required.")
        return
    end
    local norm = iso8601.normalise(v)
    if not norm then
        add_error(errors, field, "The " .. field .. " must be a valid ISO 8601"
                                 .. " date-time with a time zone.")
    end
    return norm
end

local function check_duration(errors, v)
    if v == nil then
        return 900
    end
    if type(v) ~= "number" or v ~= floor(v) or v < 1 or v > 2147483647 then
        add_error(errors, "appointment.duration",
                  "The appointment.duration must be a positive integer.")
        return
    end
    return v
end

local function invalid(errors)
    return 422, { message = INVALID, errors = errors }
end

local function body_error(msg)
    return invalid({ body = { msg } })
end

-- Unique across workers (shared counter) and unguessable (secret seed).
local function new_token()
    local n = seq_dict:incr("seq", 1, 0) or 0
    return md5(seed .. ":" .. n .. ":" .. ngx.now())
end

local function load(code)
    local s = state:get("a:" .. code)
    return s and json.decode(s)
end

-- The appointment a PUT or DELETE may act on: rec, or nil with the answer
-- (404 unknown, 400 cancelled).
local function live(code)
    local rec = load(code)
    if not rec then
        return nil, 404, { message = "Appointment not found" }
    end
    if rec.status ~= "active" then
        return nil, 400, { message = "Appointment already cancelled" }
    end
    return rec
end

local function save(rec, fresh)
    local s = json.encode_raw(rec)
    local ok, err
    if fresh then
        -- add() is the atomic "create unless it exists" across workers.
        ok, err = state:safe_add("a:" .. rec.code, s)
    else
        ok, err = state:safe_set("a:" .. rec.code, s)
    end
    if not ok then
        return nil, err
    end
    state:safe_set("t:" .. rec.token, rec.code)
    return true
end

local function storage_full()
    return 507, { message = "Sandbox storage is full; POST /__sandbox/reset." }
end

-- POST /v1/appointments
function _M.create(body, base)
    local b, msg = json.decode_body(body)
    if not b then
        return body_error(msg)
    end
    local errors = {}
    local a = object(b.appointment) or {}
    local code = check_string(errors, "appointment.code", a.code)
    local starts_at = check_starts_at(errors, a.starts_at)
    local duration = check_duration(errors, a.duration)
    local patient = check_string(errors, "patient.code",
                                 (object(b.patient) or {}).code)
    local hash = check_string(errors, "professional.hash",
                              (object(b.professional) or {}).hash)
    if next(errors) then
        return invalid(errors)
    end
    if not PROFESSIONALS[hash] then
        return 400, { message = "Professional not found" }
    end
    local token = new_token()
    local rec = {
        code = code, starts_at = starts_at, duration = duration,
        patient = patient, professional = hash, status = "active",
        token = token, url = base .. token, version = 1,
    }
    local ok, err = save(rec, true)
    if not ok then
        if err == "exists" then
            return 400, { message = "Appointment already exists" }
        end
        return storage_full()
    end
    return 200, { data = { appointment = { code = code, url = rec.url } } }
end

-- PUT /v1/appointments/{code}
function _M.reschedule(code, body, base)
    local b, msg = json.decode_body(body)
    if not b then
        return body_error(msg)
    end
    local errors = {}
    local a = object(b.appointment) or {}
    local starts_at = check_starts_at(errors, a.starts_at)
    local duration
    if a.duration ~= nil then
        duration = check_duration(errors, a.duration)
    end
    if next(errors) then
        return invalid(errors)
    end
    local rec, status, answer = live(code)
    if not rec then
        return status, answer
    end
    -- A new token renews the URL; the old token stays mapped to the code,
    -- so /call/ can tell "gone" (410) from "never existed" (404).
    rec.token = new_token()
    rec.url = base .. rec.token
    rec.starts_at = starts_at
    rec.duration = duration or rec.duration
    rec.version = rec.version + 1
    if not save(rec, false) then
        return storage_full()
    end
    return 200, { data = { appointment = { code = code, url = rec.url } } }
end

-- DELETE /v1/appointments/{code}
function _M.cancel(code)
    local rec, status, answer = live(code)
    if not rec then
        return status, answer
    end
    rec.status = "cancelled"
    rec.version = rec.version + 1
    if not save(rec, false) then
        return storage_full()
    end
    return 200, { message = "Appointment cancelled" }
end

-- get(code) -> the stored record (for the webhooks' payloads) or nil
_M.get = load

-- POST /__sandbox/appointments/{code}/finish | /no_show: the consultation
-- happened (or the patient did not come); the record stops being live.
-- rec, or nil, status, answer.
function _M.close(code, status)
    local rec, st, answer = live(code)
    if not rec then
        return nil, st, answer
    end
    rec.status = status
    rec.version = rec.version + 1
    if not save(rec, false) then
        return nil, storage_full()
    end
    return rec
end

-- GET /call/{token}: the page the appointment URL points at.
function _M.call(token)
    local code = state:get("t:" .. token)
    if not code then
        return 404, { message = "Not Found." }
    end
    local rec = load(code)
    if not rec or rec.status ~= "active" or rec.token ~= token then
        return 410, { message = "Gone" }
    end
    return 200, { appointment = { code = rec.code } }
end

-- GET /__sandbox/appointments: code -> record, without internal fields.
function _M.dump()
    local out = {}
    for _, key in ipairs(state:get_keys(0)) do
        if key:sub(1, 2) == "a:" then
            local rec = json.decode(state:get(key) or "null")
            if type(rec) == "table" then
                out[rec.code] = {
                    starts_at = rec.starts_at, duration = rec.duration,
                    patient = rec.patient, professional = rec.professional,
                    status = rec.status, url = rec.url, version = rec.version,
                }
            end
        end
    end
    return out
end


return _M
