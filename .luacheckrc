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
files["lua/mediquo/ngx_http.lua"] = { std = "max+ngx_lua" }
files["lua/mediquo/ngx_limiter.lua"] = { std = "max+ngx_lua" }
files["lua/mediquo/ngx_webhook.lua"] = { std = "max+ngx_lua" }
files["lua/mediquo/ngx_reply.lua"] = { std = "max+ngx_lua" }
files["lua/mediquo/ngx_log.lua"] = { std = "max+ngx_lua" }
files["lua/mediquo/ngx_body.lua"] = { std = "max+ngx_lua" }
files["lua/mediquo/ngx_status.lua"] = { std = "max+ngx_lua" }
files["lua/mediquo/ngx_startup.lua"] = { std = "max+ngx_lua" }
files["lua/mediquo/ngx_connect.lua"] = { std = "max+ngx_lua" }
files["lua/mediquo/ngx/"] = { std = "max+ngx_lua" }
files["spec/hostile/"] = { std = "max+ngx_lua" }
files["spec/ngx/"] = { std = "max+ngx_lua" }

-- busted specs: describe/it/assert/... come from busted.
files["spec/"] = { std = "+busted" }

-- The Redis limiter's script (Lua 5.1 inside Redis: redis, KEYS, ARGV).
stds.redis_script = { read_globals = { "redis", "KEYS", "ARGV", "cjson", "bit", "cmsgpack", "struct" } }
files["src/limiter_redis_script.lua"] = { std = "lua51+redis_script" }
