# shellcheck shell=sh
# Shared by the host suites (sourced, not run): TAP output, a scratch
# directory, and a fake Sentry to talk to. A suite sources this file, makes its
# checks with pass/fail, and ends with `finish`, which prints the TAP plan and
# sets the exit status. tools/run-tests runs each suite with prove.

root=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=tools/tap.sh
. "$root/tools/tap.sh"
passed=0
failed=0
work=$(mktemp -d "${TMPDIR:-/tmp}/sentry-host-XXXXXX")
own_fake=""

pass() {
  passed=$((passed + 1))
  echo "ok - $1"
}

# fail DESCRIPTION [DETAILS]: DETAILS (e.g. captured output) follow as TAP comments.
fail() {
  failed=$((failed + 1))
  echo "not ok - $1"
  if [ -n "${2:-}" ]; then printf '%s\n' "$2" | sed 's/^/#   /'; fi
}

# fold TEXT: passes on the result lines an inner run printed ("ok ...", "not
# ok ...", or "FAILED - ..." from the tools that predate TAP), unnumbered so
# they continue ours, and counts them; every other line becomes a comment.
fold() {
  printf '%s\n' "$1" | sed -e 's/^FAILED - /not ok - /' -e 's/^\(not \)\{0,1\}ok [0-9][0-9]*/\1ok/' \
    -e '/^\(not \)\{0,1\}ok\b/b' -e '/^1\.\.[0-9]/d' -e '/^#/b' -e 's/^/# /'
  passed=$((passed + $(printf '%s\n' "$1" | grep -c '^ok\b')))
  failed=$((failed + $(printf '%s\n' "$1" | grep -c -E '^(not ok\b|FAILED - )')))
}

# fold_command COMMAND...: runs a tool that prints result lines and folds
# them in; a non-zero exit without a failing line is a failure too.
fold_command() {
  fold_output=$("$@" 2>&1)
  fold_status=$?
  fold_failed_before=$failed
  fold "$fold_output"
  if [ "$fold_status" -ne 0 ] && [ "$failed" -eq "$fold_failed_before" ]; then
    fail "$1 ran to the end (it exited with $fold_status)"
  fi
}

# A suite may define suite_cleanup (stop its own servers); it runs first.
cleanup() {
  if command -v suite_cleanup >/dev/null 2>&1; then suite_cleanup; fi
  if [ -n "$own_fake" ]; then
    FAKE_SENTRY_STATE="$work/fake.env" "$root/spec/support/fake-sentry" stop >/dev/null 2>&1
  fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# Prints the TAP plan (and a count for people); the exit status follows the failures.
finish() {
  echo "1..$((passed + failed))"
  echo "# $passed passed, $failed failed"
  [ "$failed" -eq 0 ]
}

# Gives up on the rest of the suite: one failure, the summary, exit 1.
abort() {
  fail "$1" "${2:-}"
  finish
  exit 1
}

# The fake Sentry: the one tools/run-tests started (SENTRY_FAKE_URL), else our
# own, stopped again at exit. A private state file keeps a server that someone
# started from another shell out of reach of our stop.
need_fake() {
  if [ -z "${SENTRY_FAKE_URL:-}" ]; then
    exports=$(FAKE_SENTRY_STATE="$work/fake.env" "$root/spec/support/fake-sentry" start) ||
      abort "the fake Sentry starts" "$exports"
    own_fake=1
    eval "$exports"
  fi
  SENTRY_FAKE_URL=${SENTRY_FAKE_URL%/}
  export SENTRY_FAKE_URL
}

# seconds_below LIMIT VALUE: true when VALUE < LIMIT (both decimal seconds).
seconds_below() {
  awk -v limit="$1" -v value="$2" 'BEGIN { exit !(value != "" && value + 0 < limit + 0) }'
}

# nginx for the suites that run the module inside it.
stop_nginx() {
  if [ -f "$1/nginx.pid" ]; then
    kill -TERM "$(cat "$1/nginx.pid")" 2>/dev/null
    i=0
    while [ -f "$1/nginx.pid" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
  fi
}

# Escapes a value for the right-hand side of a sed s||| command.
sed_value() {
  printf '%s' "$1" | sed 's/[\\|&]/\\&/g'
}

# As root, nginx would run its worker as nobody, who may not read the checkout.
user_line=""
[ "$(id -u)" -eq 0 ] && user_line="user root;"

# start_nginx CONF PREFIX [SED-ARGS...]: nginx ($nginx) from spec/hosts/CONF in
# PREFIX, on a free $port; SED-ARGS fill the configuration's own placeholders.
starts=0
start_nginx() {
  conf=$1
  conf_prefix=$2
  shift 2
  attempt=0
  starts=$((starts + 1))
  while [ $attempt -lt 20 ]; do
    attempt=$((attempt + 1))
    port=$(awk -v seed="$$$starts$attempt" 'BEGIN { srand(seed); print 20000 + int(rand() * 40000) }')
    : >"$conf_prefix/error.log" # a port found taken is no error of the run
    sed -e "s|\${PREFIX}|$(sed_value "$conf_prefix")|g" -e "s|\${ROOT}|$(sed_value "$root")|g" \
      -e "s|\${PORT}|$port|g" -e "s|\${USER}|$user_line|g" "$@" \
      "$root/spec/hosts/$conf" >"$conf_prefix/nginx.conf"
    # shellcheck disable=SC2154 # $nginx: the suite's nginx binary
    if "$nginx" -p "$conf_prefix/" -c "$conf_prefix/nginx.conf" -e "$conf_prefix/error.log" \
      >"$conf_prefix/start.log" 2>&1; then
      return 0
    fi
    grep -q "Address already in use" "$conf_prefix/start.log" "$conf_prefix/error.log" 2>/dev/null || return 1
  done
  return 1
}

