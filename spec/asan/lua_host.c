/* lua_host.c: a minimal Lua 5.4 standalone interpreter, built with ASan and
 * UBSan by `make test-asan`, that runs busted over the instrumented
 * mediquo.core.
 *
 * Why not `LD_PRELOAD=libasan.so lua5.4`: the preload is inherited by every
 * child the specs start (sh, curl, nginx), and uninstrumented curl hangs
 * under it. Linking the sanitizer runtime into the host keeps it to this
 * process and to the limiter workers the specs start through MEDIQUO_LUA.
 *
 *   lua_host [-e CODE]... [SCRIPT [ARGS...]]   like lua5.4 (arg, ...)
 *
 * The build puts it first in PATH as `lua5.4`, so scripts run through
 * `#!/usr/bin/env lua5.4` (bin/mediquo) are instrumented too. Like lua5.4,
 * Ctrl-C (SIGINT) raises "interrupted!" in the running chunk (bin/mediquo
 * answers it: what to resume). */
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* the state a SIGINT interrupts, as lua.c keeps it (this host runs one) */
static lua_State *running = NULL;

static void stop_hook(lua_State *L, lua_Debug *ar)
{
    (void)ar;
    lua_sethook(L, NULL, 0, 0);
    luaL_error(L, "interrupted!");
}

/* lua.c's laction: a hook is the one thing a signal handler may set */
static void on_sigint(int sig)
{
    signal(sig, SIG_DFL);   /* a second Ctrl-C ends the process */
    lua_sethook(running, stop_hook, LUA_MASKCALL | LUA_MASKRET | LUA_MASKLINE | LUA_MASKCOUNT, 1);
}

static int traceback(lua_State *L)
{
    const char *msg = lua_tostring(L, 1);
    if (msg == NULL)
        msg = luaL_tolstring(L, 1, NULL);
    luaL_traceback(L, L, msg, 1);
    return 1;
}

/* run a chunk already on the stack with n arguments above it */
static void call(lua_State *L, int n)
{
    int base = lua_gettop(L) - n;   /* the chunk */
    lua_pushcfunction(L, traceback);
    lua_insert(L, base);
    if (lua_pcall(L, n, 0, base) != LUA_OK)
        lua_error(L);
    lua_remove(L, base);
}

static int run(lua_State *L)
{
    int argc = (int)lua_tointeger(L, 1);
    char **argv = lua_touserdata(L, 2);
    int i, script;

    luaL_openlibs(L);
    /* leading "-e CODE" options, as lua5.4 runs them */
    for (script = 1; script < argc && argv[script][0] == '-'; script += 2) {
        if (argv[script][1] != 'e' || argv[script][2] != '\0' || script + 1 >= argc)
            return luaL_error(L, "only -e CODE and a script are supported, got %s", argv[script]);
    }
    /* arg[-k..-1] = host and options, arg[0] = script, arg[1..] = its arguments */
    lua_createtable(L, argc - script, script);
    for (i = 0; i < argc; i++) {
        lua_pushstring(L, argv[i]);
        lua_rawseti(L, -2, i - script);
    }
    lua_setglobal(L, "arg");

    for (i = 1; i < script; i += 2) {
        if (luaL_loadbuffer(L, argv[i + 1], strlen(argv[i + 1]), "=(command line)") != LUA_OK)
            return lua_error(L);
        call(L, 0);
    }
    if (script >= argc)
        return 0;
    if (luaL_loadfile(L, argv[script]) != LUA_OK)
        return lua_error(L);
    luaL_checkstack(L, argc, "too many arguments");
    for (i = script + 1; i < argc; i++)
        lua_pushstring(L, argv[i]);
    call(L, argc - script - 1);
    return 0;
}

int main(int argc, char **argv)
{
    lua_State *L;
    int rc;

    if (argc < 2) {
        fprintf(stderr, "usage: %s [-e code]... [script [args...]]\n", argv[0]);
        return 2;
    }
    L = luaL_newstate();
    if (L == NULL) {
        fprintf(stderr, "%s: cannot create a Lua state\n", argv[0]);
        return 1;
    }
    lua_pushcfunction(L, run);
    lua_pushinteger(L, argc);
    lua_pushlightuserdata(L, argv);
    running = L;
    signal(SIGINT, on_sigint);
    rc = lua_pcall(L, 2, 0, 0);
    signal(SIGINT, SIG_DFL);
    if (rc != LUA_OK) {
        const char *msg = lua_tostring(L, -1);
        fprintf(stderr, "%s: %s\n", argv[0], msg ? msg : "(error object is not a string)");
    }
    lua_close(L);
    return rc == LUA_OK ? 0 : 1;
}
