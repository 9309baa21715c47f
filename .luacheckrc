-- .luacheckrc: `make lint` runs luacheck over lua/, spec/, examples/ and
-- bench/ with this file. The library targets Lua 5.1-5.4 and LuaJIT, so the
-- default standard is the union of them; the nginx-side code (the sandbox,
-- the OpenResty adapter, nginx-run spec handlers) may use `ngx`.
std = "max"
codes = true
max_line_length = 120
exclude_files = { ".rocks/", "build/" }

-- Code that runs inside nginx's Lua module (LuaJIT + the ngx API).
files["lua/mediquo/sandbox/"] = { std = "max+ngx_lua" }
files["lua/mediquo/ngx.lua"] = { std = "max+ngx_lua" }
files["lua/mediquo/ngx_redis.lua"] = { std = "max+ngx_lua" }
files["lua/mediquo/ngx/"] = { std = "max+ngx_lua" }
files["spec/hostile/"] = { std = "max+ngx_lua" }
files["spec/ngx/"] = { std = "max+ngx_lua" }

-- ngx.run_worker_thread (lua-nginx-module 0.10.23+) postdates luacheck's
-- ngx_lua standard; the adapter hands blocking calls to a thread pool with it.
stds.ngx_extra = { read_globals = { ngx = { fields = { "run_worker_thread" } } } }
for _, f in ipairs{ "lua/mediquo/sandbox/", "lua/mediquo/ngx.lua", "lua/mediquo/ngx_redis.lua", "lua/mediquo/ngx/",
                     "spec/hostile/", "spec/ngx/" } do
    files[f].std = files[f].std .. "+ngx_extra"
end

-- busted specs: describe/it/assert/... come from busted.
files["spec/"] = { std = "+busted" }
