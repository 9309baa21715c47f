-- mediquo.cli.progress: the import's progress line, on stderr and only on
-- a terminal: rows done / total, rate, time left, failures, and while rows
-- wait for the shared budget "waiting for budget until HH:MM:SS". It never
-- mixes with result lines: the caller clears it before writing one
-- (p:clear()) and it is drawn again at the next update.

local core = require "mediquo.core"
local util = require "mediquo.cli.util"

local pairs = pairs
local format = string.format
local floor = math.floor

local _M = {}
local mt = { __index = _M }

-- new(stderr, enabled, total, budget) -> progress; budget: rows per second
-- the shared limiter allows (the time left is never less than it allows)
function _M.new(stderr, enabled, total, budget)
    return setmetatable({ err = stderr, on = enabled, total = total, budget = budget,
                          t0 = core.now(), last = -1, shown = false }, mt)
end

-- the line is off the screen (before a result line is written)
function _M.clear(self)
    if self.on and self.shown then
        self.err:write("\r\27[K")
        self.err:flush()
        self.shown = false
    end
end

-- s = { done, sent, held, by_kind, wait = seconds until a slot | nil };
-- drawn at most 5 times a second (always when final)
function _M.update(self, s, final, force)
    if not self.on then return end
    local now = core.now()
    if not final and not force and now - self.last < 0.2 then return end
    self.last = now
    local el = now - self.t0
    local left = self.total - s.done
    local rate = el > 0 and s.sent / el or 0
    local eta = rate > 0 and left / rate or 0
    if self.budget and left / self.budget > eta then eta = left / self.budget end
    local failed = 0
    for _, n in pairs(s.by_kind) do failed = failed + n end
    local waiting = ""
    if not final and s.wait and s.wait >= 1 then
        waiting = "  waiting for budget until " .. os.date("%H:%M:%S", floor(os.time() + s.wait + 0.5))
    end
    self.err:write(format("\r\27[Kimport: %d/%d  %.1f/s  ETA %ds  failed %d%s%s%s",
        s.done, self.total, rate, floor(eta + 0.5), failed,
        failed > 0 and (" (" .. util.by_kind_text(s.by_kind) .. ")") or "",
        s.held > 0 and format("  held %d", s.held) or "", waiting), final and "\n" or "")
    self.err:flush()
    self.shown = not final
end

return _M
