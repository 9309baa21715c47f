-- The request log behind GET /__sandbox/log: a ring of the last MAX entries
-- in a shared dict, slot = sequence number mod MAX, so writing is one incr
-- and one set whatever the traffic.

local json = require "mediquo.sandbox.json"

local ngx = ngx
local max = math.max
local encode_raw = json.encode_raw

local _M = { _VERSION = "0.2.0", MAX = 10000 }

local dict

function _M.configure(dict_name)
    dict = ngx.shared[dict_name]
end

function _M.add(entry)
    local n = dict:incr("n", 1, 0)
    if n then
        entry.seq = n
        dict:set("e" .. n % _M.MAX, encode_raw(entry))
    end
end

-- Oldest first. An entry overwritten meanwhile by a newer one (its seq no
-- longer matches) is skipped rather than shown out of order.
function _M.list()
    local n = dict:get("n") or 0
    local out, k = {}, 0
    for i = max(1, n - _M.MAX + 1), n do
        local s = dict:get("e" .. i % _M.MAX)
        local e = s and json.decode(s)
        if e and e.seq == i then
            k = k + 1
            out[k] = e
        end
    end
    return out
end

return _M
