/* For the specs only (spec/hostile_lifecycle_spec.lua compiles it): fork,
 * waitpid and _exit, which plain Lua cannot do. */
#define _POSIX_C_SOURCE 200809L
#include <lauxlib.h>
#include <lua.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

/* fork() -> the child's pid in the parent, 0 in the child */
static int helper_fork(lua_State *L) {
  pid_t pid = fork();
  if (pid < 0) return luaL_error(L, "fork failed");
  lua_pushinteger(L, (lua_Integer)pid);
  return 1;
}

/* wait(pid) -> the child's exit status, or -1 when it did not exit normally */
static int helper_wait(lua_State *L) {
  int status = 0;
  if (waitpid((pid_t)luaL_checkinteger(L, 1), &status, 0) < 0) return luaL_error(L, "waitpid failed");
  lua_pushinteger(L, WIFEXITED(status) ? WEXITSTATUS(status) : -1);
  return 1;
}

/* exit_now(code): ends the process without closing the Lua state */
static int helper_exit_now(lua_State *L) {
  _exit((int)luaL_optinteger(L, 1, 0));
  return 0;
}

static int helper_getpid(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)getpid());
  return 1;
}

static const luaL_Reg functions[] = {
    {"fork", helper_fork},
    {"wait", helper_wait},
    {"exit_now", helper_exit_now},
    {"getpid", helper_getpid},
    {NULL, NULL}};

int luaopen_fork_helper(lua_State *L);

int luaopen_fork_helper(lua_State *L) {
#if LUA_VERSION_NUM >= 502
  luaL_newlib(L, functions);
#else
  lua_newtable(L);
  luaL_register(L, NULL, functions);
#endif
  return 1;
}
