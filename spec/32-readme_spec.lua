-- The README as a newcomer uses it: the Quick start's shell lines and its
-- first ```lua block, run as pasted (bash, from the checkout, the sandbox on
-- a free port through the README's own PORT variable), exit 0 twice in a
-- row; the README stays short; every docs/ page it links exists and every
-- docs/ page is linked. The Lua block is also what examples/quickstart.lua
-- runs, so the demo and the README cannot drift apart.
local H = require "spec.helper"

local q = H.shell_quote

local readme = assert(H.read_file(H.root .. "/README.md"))

-- the text of one "## title" section (up to the next "## ")
local function section(title)
    local start = readme:find("\n## " .. title .. "\n", 1, true)
    assert(start, "README has no section " .. title)
    local stop = readme:find("\n## ", start + 4, true) or #readme + 1
    return readme:sub(start, stop)
end

-- the bodies of the ```lang blocks of a text, in order
local function blocks(text, lang)
    local out = {}
    for body in text:gmatch("\n```" .. lang .. "\n(.-)\n```") do out[#out + 1] = body .. "\n" end
    return out
end

local function free_port()
    local socket = require "socket"
    for _ = 1, 50 do
        local port = H.free_port()
        local s = socket.tcp()
        local ok = s:bind("127.0.0.1", port)
        s:close()
        if ok then return port end
    end
    error("no free port")
end

describe("README", function()
    it("is at most 450 lines", function()
        local n = select(2, readme:gsub("\n", "\n"))
        assert.is_true(n <= 450, "README.md has " .. n .. " lines")
    end)

    it("links docs/ pages that exist, and every docs/ page is linked", function()
        local linked = {}
        for page in readme:gmatch("%]%((docs/[%w%-_]+%.md)[#%)]") do
            linked[page] = true
            assert.is_truthy(H.read_file(H.root .. "/" .. page), page .. " is linked but missing")
        end
        for _, page in ipairs{ "limiter-and-redis", "retries-and-exactly-once", "openresty",
                               "batches-and-cli", "sandbox", "security", "performance",
                               "architecture", "testing", "packaging" } do
            assert.is_true(linked["docs/" .. page .. ".md"], "docs/" .. page .. ".md not linked")
        end
        local files = H.run("ls " .. q(H.root .. "/docs"))
        for name in files:gmatch("[^\n]+") do
            assert.is_true(linked["docs/" .. name] or false, "docs/" .. name .. " is not linked from the README")
        end
    end)

    it("has links that resolve: files, and headings for #anchors (README and docs/)", function()
        -- GitHub's heading anchors: lower case, punctuation dropped, spaces to '-'
        local function slug(title)
            return (title:lower():gsub("[^%w%s_%-]", ""):gsub("%s", "-"))
        end
        local function anchors(text)
            local set, fence = {}, false
            for line in (text .. "\n"):gmatch("(.-)\n") do
                if line:match("^```") then fence = not fence end
                local title = not fence and line:match("^#+%s+(.-)%s*$")
                if title then set[slug(title)] = true end
            end
            return set
        end
        local pages = { ["README.md"] = readme }
        for name in H.run("ls " .. q(H.root .. "/docs")):gmatch("[^\n]+") do
            pages["docs/" .. name] = assert(H.read_file(H.root .. "/docs/" .. name))
        end
        local checked = 0
        for page, text in pairs(pages) do
            local dir = page:match("^(.*)/") or ""
            for target in text:gmatch("%]%(([^)%s]+)%)") do
                if not target:match("^%a+:") then          -- not http:, mailto: ...
                    local file, anchor = target:match("^([^#]*)#?(.*)$")
                    local path = file == "" and page
                        or ((dir ~= "" and dir .. "/" or "") .. file):gsub("[^/]+/%.%./", "")
                    local body = pages[path] or H.read_file(H.root .. "/" .. path)
                    assert.is_truthy(body, page .. ": link to missing " .. target)
                    if anchor ~= "" then
                        assert.is_true(anchors(body)[anchor] or false, page .. ": no heading for " .. target)
                    end
                    checked = checked + 1
                end
            end
        end
        assert.is_true(checked > 30, "only " .. checked .. " links found")
    end)

    it("has a syntax line for every function of the API", function()
        local api = section("API")
        for _, f in ipairs{ "mediquo.new", "client:create", "client:reschedule", "client:cancel",
                            "client:stats", "client:close", "client:run_batch", "mediquo.limiter",
                            "lim:acquire", "lim:try", "lim:status", "lim:resume", "lim:close" } do
            assert.matches("%*%*syntax:%*%* `[^`\n]*" .. f:gsub("[%.:]", "%%%0"), api)
        end
    end)

    describe("OpenResty", function()
        local conf = blocks(section("OpenResty"), "nginx")
        local shell = blocks(section("OpenResty"), "sh")

        it("has one complete nginx.conf, with nothing about threads", function()
            assert.equal(1, #conf)
            assert.equal(1, #shell)
            -- the handler is mediquo.ngx's: read, reply; status for operators
            for _, f in ipairs{ "mq.read(", "mq.reply(", ".status()", "init_worker()",
                                "allow 127.0.0.1; deny all;" } do
                assert.truthy(conf[1]:find(f, 1, true), f)
            end
            for _, d in ipairs{ "events", "http", "listen", "pid", "error_log", "user",
                                "lua_package_path", "lua_package_cpath", "init_by_lua_block" } do
                assert.matches("\n%s*" .. d .. "[%s{]", "\n" .. conf[1])
            end
            assert.is_nil(conf[1]:find("thread", 1, true))
        end)

        it("works as written: a booking through it reaches the sandbox", function()
            local sb = H.sandbox()
            local port = free_port()
            local prefix = (H.run('mktemp -d "${TMPDIR:-/tmp}/mediquo-readme-ngx.XXXXXX"'):gsub("%s+$", ""))
            H.run("mkdir -p " .. q(prefix .. "/logs") .. " && chmod 755 " .. q(prefix))
            -- the only changes a reader makes: the checkout's path, a free
            -- port, and (started as root) workers that can read this
            -- checkout: www-data as written when it can (a plain Debian box)
            local text = conf[1]:gsub("/path/to/lua%-mediquo", H.root)
                                :gsub("listen 127%.0%.0%.1:%d+;", "listen 127.0.0.1:" .. port .. ";")
            local as_root = H.run("id -u"):match("^0%s*$")
            local probe = "test -r " .. q(H.root .. "/lua/mediquo/ngx.lua")
                          .. " && test -r " .. q(H.root .. "/build/luajit/mediquo/core.so")
            local _, readable = H.run("su -s /bin/sh www-data -c " .. q(probe) .. " 2>/dev/null")
            if as_root and readable ~= 0 then
                text = text:gsub("\nuser [^;]*;", "\nuser " .. H.run("id -un"):gsub("%s+$", "") .. ";")
            end
            if H.run("nginx -V 2>&1"):find("lua-nginx-module", 1, true) then
                text = text:gsub("load_module [^\n]*\n", "")          -- OpenResty: built in
            elseif os.getenv("MEDIQUO_NGINX_MODULES") then
                text = text:gsub("/usr/lib/nginx/modules", os.getenv("MEDIQUO_NGINX_MODULES"))
            end
            H.write_file(prefix .. "/minimal.conf", text)
            local list = os.getenv("MEDIQUO_TEST_PIDS")
            if list and list ~= "" then
                local f = io.open(list, "a")
                if f then f:write(prefix, "\n"); f:close() end
            end
            -- the shell lines as pasted (the resolver from /etc/resolv.conf,
            -- then nginx), with the keys for "..." and the sandbox's URL
            local sh = shell[1]:gsub("MEDIQUO_API_KEY=%.%.%.", "MEDIQUO_API_KEY=" .. q(H.api_key))
                               :gsub("MEDIQUO_SECRET_KEY=%.%.%.", "MEDIQUO_SECRET_KEY=" .. q(H.secret_key))
            H.write_file(prefix .. "/pasted.sh", sh)
            local out, code = H.run(("cd %s && MEDIQUO_BASE_URL=%s bash pasted.sh 2>&1"):format(
                                     q(prefix), q(sb.base_url)))
            local resolver = H.read_file(prefix .. "/resolver.conf") or ""
            local status, body, headers
            local extra = {}
            if code == 0 then
                local code_name = ("readme-ngx-%d-%d"):format(os.time(), math.random(1e6))
                for _ = 1, 100 do       -- bounded wait until it listens
                    status, body, headers = H.http("POST", ("http://127.0.0.1:%d/book"):format(port),
                        H.json.encode{ code = code_name, starts_at = "2030-05-20T10:00:00Z",
                                       patient = "p", professional = "prof-demo-1" },
                        { ["Content-Type"] = "application/json" }, { timeout = 30 })
                    if status then break end
                    H.sleep(0.05)
                end
                if status == 201 then
                    assert.equal("active", (sb:state()[code_name] or {}).status)
                end
                extra.limit = headers and (headers["x-ratelimit-limit"] or headers["X-RateLimit-Limit"])
                extra.get = H.http("GET", ("http://127.0.0.1:%d/book"):format(port))
                extra.status, extra.page = H.http("GET", ("http://127.0.0.1:%d/status"):format(port))
            end
            local pid = tonumber((H.read_file(prefix .. "/logs/nginx.pid") or ""):match("%d+"))
            if pid then
                H.run("kill -QUIT " .. pid)
                for _ = 1, 100 do
                    if select(2, H.run("kill -0 " .. pid .. " 2>/dev/null")) ~= 0 then break end
                    H.sleep(0.05)
                end
            end
            local log = H.read_file(prefix .. "/logs/error.log") or ""
            H.run("rm -rf " .. q(prefix))
            assert.equal(0, code, out)
            assert.matches("^resolver [%w%.:%[%]]+ ipv6=off;\n$", resolver)
            assert.equal(201, status, tostring(body) .. "\n" .. log)
            assert.matches('"url"', body)
            assert.equal("600", extra.limit)
            assert.equal(405, extra.get)
            assert.equal(200, extra.status, tostring(extra.page))
            assert.equal("local", H.json.decode(extra.page).limiter.backend)
            assert.matches("start%-up check: ready", log)
        end)
    end)

    describe("Quick start", function()
        local quick = section("Quick start")
        local sh, lua = blocks(quick, "sh"), blocks(quick, "lua")

        it("has the shell lines and the Lua block", function()
            assert.equal(2, #sh)
            assert.equal(1, #lua)
            for _, v in ipairs{ "MEDIQUO_API_KEY", "MEDIQUO_SECRET_KEY", "MEDIQUO_BASE_URL" } do
                assert.matches("export[^\n]*" .. v .. "=", sh[1])
                assert.matches('os.getenv("' .. v .. '")', lua[1], 1, true)
            end
            assert.matches("lua5.4 quick.lua && lua5.4 quick.lua", sh[2], 1, true)
        end)

        it("is what examples/quickstart.lua runs", function()
            local example = assert(H.read_file(H.root .. "/examples/quickstart.lua"))
            assert.is_truthy(example:find(lua[1], 1, true), "examples/quickstart.lua differs from the README")
        end)

        it("runs as pasted, twice in a row, against a fresh sandbox", function()
            local port = free_port()
            local dir = (H.run('mktemp -d "${TMPDIR:-/tmp}/mediquo-readme.XXXXXX"'):gsub("%s+$", ""))
            -- the pasted lines run in the checkout (where `make` works); the
            -- script is saved there as the README says, and removed after
            local script = H.root .. "/quick.lua"
            local before = H.read_file(script)      -- never clobber a reader's own quick.lua
            assert.is_true(before == nil or before == lua[1], "a quick.lua of your own is in the checkout")
            H.write_file(script, lua[1])
            local pasted = dir .. "/pasted.sh"
            H.write_file(pasted, "set -e\ncd " .. q(H.root) .. "\n" .. sh[1] .. sh[2])
            -- a clean environment for the three settings, the port, and a
            -- sandbox prefix of its own (recorded for spec/run.sh's cleanup)
            local prefix = ("%s/mediquo-sandbox-%d"):format(os.getenv("TMPDIR") or "/tmp", port)
            local list = os.getenv("MEDIQUO_TEST_PIDS")
            if list and list ~= "" then
                local f = io.open(list, "a")
                if f then f:write(prefix, "\n"); f:close() end
            end
            local out, code = H.run(("env -u MEDIQUO_API_KEY -u MEDIQUO_SECRET_KEY -u MEDIQUO_BASE_URL "
                                     .. "PORT=%d bash %s 2>&1"):format(port, q(pasted)))
            os.remove(script)
            H.run(("%s stop --port %d >/dev/null 2>&1; rm -rf %s"):format(q(H.bin), port, q(dir)))
            assert.equal(0, code, out)
            -- two runs, two fresh codes, each created, moved and cancelled
            local codes = {}
            for c in ("\n" .. out):gmatch("\ncancelled%s+(%S+)") do codes[#codes + 1] = c end
            assert.equal(2, #codes, out)
            assert.not_equal(codes[1], codes[2])
            local _, created = out:gsub("created%s+quick%-", "")
            assert.equal(2, created, out)
        end)
    end)
end)
