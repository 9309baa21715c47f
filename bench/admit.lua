-- bench/admit.lua: the admission loop the Redis benches' worker processes
-- run: n admissions of limiter l (acquire(1), never longer than 60 s in
-- all) -> admitted, nanoseconds taken.
local now = require("mediquo.core").limiter_now

return function(l, n)
    local c = l.core
    local t0 = now()
    local got = 0
    for _ = 1, n do
        if c:acquire(1) then got = got + 1 end
        if now() - t0 > 60e9 then break end
    end
    return got, now() - t0
end
