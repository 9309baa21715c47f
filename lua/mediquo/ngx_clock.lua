-- mediquo.ngx_clock: the clock of core.now (CLOCK_MONOTONIC, seconds) for
-- the nginx driver, read through LuaJIT's FFI: a C call the JIT compiles
-- into the trace, where core.now (a Lua C function) ends the trace and
-- starts another at each reading (four a /book: ~530 instructions,
-- bench/ngx_instr.sh). Where the FFI cannot read it as C does (no FFI,
-- not 64-bit Linux, whose CLOCK_MONOTONIC is 1 and timespec two longs)
-- it is core.now itself. The engine is only ever told times from one of
-- the two, never both mixed with another clock.

local core = require "mediquo.core"

local ok, ffi = pcall(require, "ffi")
if not (ok and ffi.os == "Linux" and ffi.abi("64bit")) then
    return core.now
end

-- a name of our own (__asm__ binds it to libc's clock_gettime): another
-- module's declaration of clock_gettime, whatever its types, never meets ours
local declared = pcall(ffi.cdef, [[
    struct mediquo_timespec { long tv_sec; long tv_nsec; };
    int mediquo_clock_gettime(int clk, struct mediquo_timespec *ts) __asm__("clock_gettime");
]])
if not declared then
    return core.now
end

local C = ffi.C
local tonumber = tonumber
local ts = ffi.new("struct mediquo_timespec")
local CLOCK_MONOTONIC = 1

-- one reading: the struct is the module's own (a worker runs one Lua
-- thread at a time, and nothing yields between the call and the reads)
local function now()
    C.mediquo_clock_gettime(CLOCK_MONOTONIC, ts)
    return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) / 1e9
end

-- the FFI path is kept only if it reads what core.now reads
local a, b, c = core.now(), now(), core.now()
if not (b >= a and b <= c) then
    return core.now
end
return now
