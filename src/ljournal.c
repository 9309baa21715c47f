/* ljournal.c: the files an import holds, for the CLI (mediquo.cli):
 *
 *   jf, msg, why = core.journal(path)  -- append-only, exclusively locked
 *   ok, msg = jf:append(s)             -- all of s on disk (write + fsync)
 *   ok, msg = jf:append(s, true)       -- all of s written, not yet synced:
 *                                      -- it outlives a kill of the process
 *   ok, msg = jf:sync()                -- on disk (fsync)
 *   lk, regular = core.lock(path)      -- an existing file, exclusively locked
 *                                      -- (regular false: a pipe, nothing locked)
 *   nil, msg, why = core.lock(path)    -- on failure
 *   h:close()                          -- also __gc / __close
 *   mode = core.file_mode(path)        -- its permission bits (a keys file
 *                                      -- others may read is refused), or
 *   nil, msg = core.file_mode(path)    -- when it cannot be looked at
 *
 * The locks are flock(2) locks taken without waiting: a second import of
 * the same file is refused at once (why = "locked") and a killed import
 * leaves no stale lock behind. An append either lands whole and is synced,
 * or fails with the OS reason and leaves the file as it was (a partial
 * write is cut off again), so a journal line is never half there. Lua's io
 * library can neither lock nor fsync, hence this file. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "compat.h"
#include "ljournal.h"
#include "lclass.h"

#define JOURNAL_MT  "mediquo.core.journal"
#define JOURNAL_TAG "mq.journ"     /* lclass.h: each userdata's first 8 bytes */

typedef struct {
    char tag[MQ_LTAG_LEN];
    int fd;                     /* -1 once closed (or never opened) */
} held_file;

/* nil, "what: OS reason"; plus "locked" | "os" when why is set (3) */
static int push_fail2(lua_State *L, const char *what, int err)
{
    lua_pushnil(L);
    lua_pushfstring(L, "%s: %s", what, strerror(err));
    return 2;
}

static int push_fail(lua_State *L, const char *what, int err)
{
    push_fail2(L, what, err);
    lua_pushstring(L, err == EWOULDBLOCK ? "locked" : "os");
    return 3;
}

/* write all of buf at fd; 0 or an errno value */
static int write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0) {
            if (errno == EINTR) continue;
            return errno;
        }
        if (n == 0) return EIO;
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

/* open path with flags, lock it exclusively without waiting; the userdata
 * is made first so that __gc closes the descriptor whatever follows */
static int open_locked(lua_State *L, const char *path, int flags)
{
    held_file *h = (held_file *)mq_lclass_new(L, sizeof *h, JOURNAL_TAG, JOURNAL_MT);
    int fd, e;
    h->fd = -1;
    fd = open(path, flags | O_CLOEXEC, 0666);
    if (fd < 0)
        return push_fail(L, "cannot open", errno);
    h->fd = fd;
    while (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        if (errno == EINTR) continue;
        e = errno;
        close(fd);
        h->fd = -1;
        return push_fail(L, "cannot lock", e);
    }
    return 1;
}

/* core.lock(path) -> handle, regular | nil, message, "locked" | "os"
 * Only a regular file is locked: a pipe (`import <(...)`) or a FIFO is read
 * once by whoever opens it, so there is nothing a second import could redo
 * (O_NONBLOCK: opening a FIFO must not wait for its writer). */
static int l_lock(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    struct stat st;
    if (stat(path, &st) != 0)
        return push_fail(L, "cannot open", errno);
    if (!S_ISREG(st.st_mode)) {
        held_file *h = (held_file *)mq_lclass_new(L, sizeof *h, JOURNAL_TAG, JOURNAL_MT);
        h->fd = -1;
        lua_pushboolean(L, 0);
        return 2;
    }
    if (open_locked(L, path, O_RDONLY | O_NONBLOCK) != 1)
        return 3;
    lua_pushboolean(L, 1);
    return 2;
}

/* core.journal(path) -> handle | nil, message, "locked" | "os"
 * A last line cut short (a kill, a full disk in an older version) is ended
 * with a newline first, so the next line does not run into it. */
static int l_journal(lua_State *L)
{
    held_file *h;
    struct stat st;
    char last;
    int e;
    if (open_locked(L, luaL_checkstring(L, 1), O_RDWR | O_APPEND | O_CREAT) != 1)
        return 3;
    h = (held_file *)lua_touserdata(L, -1);
    if (fstat(h->fd, &st) != 0)
        return push_fail(L, "cannot stat", errno);
    if (st.st_size > 0) {
        ssize_t n = pread(h->fd, &last, 1, st.st_size - 1);
        if (n < 0)
            return push_fail(L, "cannot read", errno);
        if (n == 1 && last != '\n' && (e = write_all(h->fd, "\n", 1)) != 0)
            return push_fail(L, "cannot write", e);
    }
    return 1;
}

static held_file *check_open(lua_State *L)
{
    held_file *h = mq_ltag_check(L, 1, JOURNAL_TAG, JOURNAL_MT);
    if (h->fd < 0) luaL_error(L, "journal is closed");
    return h;
}

/* h:append(s[, nosync]) -> true | nil, message */
static int l_append(lua_State *L)
{
    held_file *h = check_open(L);
    size_t len;
    const char *s = luaL_checklstring(L, 2, &len);
    int nosync = lua_toboolean(L, 3);
    struct stat st;
    int e;
    if (fstat(h->fd, &st) != 0)
        return push_fail2(L, "cannot stat", errno);
    e = write_all(h->fd, s, len);
    if (e == 0 && !nosync && fsync(h->fd) != 0)
        e = errno;
    if (e != 0) {
        /* leave no partial line behind (best effort: the disk is failing) */
        if (ftruncate(h->fd, st.st_size) != 0) { /* nothing more to do */ }
        return push_fail2(L, "cannot write", e);
    }
    lua_pushboolean(L, 1);
    return 1;
}

/* h:sync() -> true | nil, message: what was appended is on disk */
static int l_sync(lua_State *L)
{
    held_file *h = check_open(L);
    if (fsync(h->fd) != 0)
        return push_fail2(L, "cannot write", errno);
    lua_pushboolean(L, 1);
    return 1;
}

/* close, __gc and __close: one idempotent function (closing drops the lock) */
static int l_close(lua_State *L)
{
    held_file *h = mq_ltag_check(L, 1, JOURNAL_TAG, JOURNAL_MT);
    if (h->fd >= 0) {
        close(h->fd);
        h->fd = -1;
    }
    return 0;
}

static int l_tostring(lua_State *L)
{
    held_file *h = mq_ltag_check(L, 1, JOURNAL_TAG, JOURNAL_MT);
    lua_pushstring(L, h->fd < 0 ? "mediquo.core.journal (closed)" : "mediquo.core.journal");
    return 1;
}

/* core.file_mode(path) -> permission bits (st_mode & 07777) | nil, msg */
static int l_file_mode(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    struct stat st;
    if (stat(path, &st) != 0) {
        lua_pushnil(L);
        lua_pushstring(L, strerror(errno));
        return 2;
    }
    lua_pushinteger(L, (lua_Integer)(st.st_mode & 07777));
    return 1;
}

void mq_ljournal_open(lua_State *L)
{
    static const luaL_Reg methods[] = {
        { "append", l_append },
        { "sync", l_sync },
        { "close", l_close },
        { NULL, NULL },
    };
    static const luaL_Reg meta[] = {
        { "__gc", l_close },
        { "__close", l_close },
        { "__tostring", l_tostring },
        { NULL, NULL },
    };
    /* the module table is on top of the stack */
    mq_lclass(L, JOURNAL_MT, meta, methods, NULL);
    lua_pop(L, 1);
    lua_pushcfunction(L, l_journal);
    lua_setfield(L, -2, "journal");
    lua_pushcfunction(L, l_lock);
    lua_setfield(L, -2, "lock");
    lua_pushcfunction(L, l_file_mode);
    lua_setfield(L, -2, "file_mode");
}
