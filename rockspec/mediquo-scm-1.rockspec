rockspec_format = "3.0"
package = "mediquo"
version = "scm-1"
source = {
   url = "git+https://github.com/lua-mediquo/lua-mediquo.git",
}
description = {
   summary = "mediQuo SDK appointments client: a C core over libcurl, a host-wide rate limiter, OpenResty adapter",
   detailed = [[
Create, reschedule and cancel mediQuo video-call appointments from Lua at
native speed: libcurl transport with connection reuse, retries with backoff
and deadlines, exactly-once effects, and one rate-limit budget shared by
every process on the host. Works from Lua 5.1-5.4, LuaJIT and OpenResty.
]],
   license = "MIT",
   labels = { "http", "curl", "openresty", "mediquo" },
}
dependencies = {
   "lua >= 5.1",
   "lua-cjson",
}
-- Only the library is probed: on Debian/Ubuntu multiarch curl.h lives in
-- /usr/include/<triplet>/, which the compiler searches by default but the
-- LuaRocks header probe does not. A missing header stops the build with a
-- message naming the package (src/transport.c).
external_dependencies = {
   CURL = { library = "curl" },
   -- mediquo.ngx reads HTTP/1.1 answers with it (src/lhttp.c);
   -- Debian/Ubuntu: apt-get install libhttp-parser-dev
   HTTP_PARSER = { header = "http_parser.h", library = "http_parser" },
   -- the Redis limiter (rate_limit.redis): Debian/Ubuntu libhiredis-dev,
   -- Fedora hiredis-devel, Alpine hiredis-dev, Homebrew hiredis
   HIREDIS = { header = "hiredis/hiredis.h", library = "hiredis" },
}
build = {
   type = "builtin",
   modules = {
      ["mediquo.core"] = {
         sources = {
            "src/lmediquo.c", "src/lclient.c", "src/llimiter.c",
            "src/transport.c", "src/policy.c",
            "src/limiter.c", "src/limiter_file.c", "src/limiter_rule.c",
            "src/iso8601.c", "src/urlenc.c", "src/headers.c",
            "src/batch.c", "src/lbatch.c", "src/metrics.c", "src/lmetrics.c",
            "src/shmfile.c", "src/shmguard.c", "src/text.c", "src/lcheck.c", "src/lbody.c", "src/answer.c",
            "src/engine.c", "src/baseurl.c", "src/request.c", "src/secrets.c", "src/secrets_enc.c", "src/explain.c",
            "src/lengine.c", "src/lengine_wire.c", "src/driver_easy.c", "src/lhttp.c",
            "src/ljournal.c", "src/lopt.c", "src/lclass.c", "src/ltz.c", "src/suggest.c", "src/redis_conn.c", "src/lease_file.c",
            "src/limiter_redis.c", "src/limiter_redis_script.c", "src/lredis.c",
            "src/redis_url.c", "src/redis_conv.c", "src/redis_tls.c", "src/redis_verdict.c",
            "src/redis_cluster.c", "src/redis_sentinel.c",
            "src/webhook.c", "src/lwebhook.c", "src/lcheck_webhook.c", "src/lcheck_op.c", "src/limiter_opts.c",
         },
         libraries = { "curl", "http_parser", "hiredis", "ssl", "crypto", "pthread" },
         incdirs = { "$(CURL_INCDIR)", "$(HTTP_PARSER_INCDIR)", "$(HIREDIS_INCDIR)" },
         libdirs = { "$(CURL_LIBDIR)", "$(HTTP_PARSER_LIBDIR)", "$(HIREDIS_LIBDIR)" },
      },
      mediquo = "lua/mediquo.lua",
      ["mediquo.errors"] = "lua/mediquo/errors.lua",
      ["mediquo.webhook"] = "lua/mediquo/webhook.lua",
      ["mediquo.ngx_webhook"] = "lua/mediquo/ngx_webhook.lua",
      ["mediquo.validate"] = "lua/mediquo/validate.lua",
      ["mediquo.limiter"] = "lua/mediquo/limiter.lua",
      ["mediquo.ngx"] = "lua/mediquo/ngx.lua",
      ["mediquo.ngx_http"] = "lua/mediquo/ngx_http.lua",
      ["mediquo.ngx_limiter"] = "lua/mediquo/ngx_limiter.lua",
      ["mediquo.ngx_clock"] = "lua/mediquo/ngx_clock.lua",
      ["mediquo.ngx_reply"] = "lua/mediquo/ngx_reply.lua",
      ["mediquo.ngx_log"] = "lua/mediquo/ngx_log.lua",
      ["mediquo.ngx_body"] = "lua/mediquo/ngx_body.lua",
      ["mediquo.ngx_status"] = "lua/mediquo/ngx_status.lua",
      ["mediquo.ngx_startup"] = "lua/mediquo/ngx_startup.lua",
      ["mediquo.ngx_connect"] = "lua/mediquo/ngx_connect.lua",
      ["mediquo.ngx_redis"] = "lua/mediquo/ngx_redis.lua",
      ["mediquo.ngx_tls"] = "lua/mediquo/ngx_tls.lua",
      ["mediquo.batch"] = "lua/mediquo/batch.lua",
      ["mediquo.cli"] = "lua/mediquo/cli.lua",
      ["mediquo.cli.input"] = "lua/mediquo/cli/input.lua",
      ["mediquo.cli.journal"] = "lua/mediquo/cli/journal.lua",
      ["mediquo.cli.util"] = "lua/mediquo/cli/util.lua",
      ["mediquo.cli.limiter"] = "lua/mediquo/cli/limiter.lua",
      ["mediquo.cli.single"] = "lua/mediquo/cli/single.lua",
      ["mediquo.cli.import"] = "lua/mediquo/cli/import.lua",
      ["mediquo.cli.progress"] = "lua/mediquo/cli/progress.lua",
      ["mediquo.cli.dates"] = "lua/mediquo/cli/dates.lua",
      ["mediquo.cli.webhooks"] = "lua/mediquo/cli/webhooks.lua",
   },
   install = {
      bin = { mediquo = "bin/mediquo" },
   },
}
