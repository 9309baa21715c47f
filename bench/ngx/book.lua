-- bench/ngx/book.lua: wrk script: POST /book with a new appointment code on
-- every request (the API refuses a code twice), the same body for both the
-- mediquo.ngx gateway and the proxy_pass baseline (which wraps nothing: it
-- gets the API's own JSON shape).
-- luacheck: globals wrk setup init request response

local counter, prefix = 0, "x"
local threads = 0
local shape = os.getenv("BOOK_SHAPE") or "gateway"

function setup(thread)
    threads = threads + 1
    thread:set("tid", threads)
end

function init()
    prefix = ("b%d-%d"):format(tid or 0, math.floor(os.time() % 100000))  -- luacheck: ignore tid
end

function request()
    counter = counter + 1
    local code = prefix .. "-" .. counter
    local body
    if shape == "api" then
        body = ('{"appointment":{"code":"%s","starts_at":"2030-05-20T10:00:00Z"},'
            .. '"patient":{"code":"P1"},"professional":{"hash":"prof-demo-1"}}'):format(code)
    else
        body = ('{"code":"%s","starts_at":"2030-05-20T10:00:00Z","patient":"P1",'
            .. '"professional":"prof-demo-1"}'):format(code)
    end
    return wrk.format("POST", nil, { ["Content-Type"] = "application/json" }, body)
end
