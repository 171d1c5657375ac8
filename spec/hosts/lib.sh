# shellcheck shell=sh
# Shared by the host suites (sourced, not run): counting checks, a scratch
# directory, and a fake Sentry to talk to. A suite sources this file, makes its
# checks with pass/fail, and ends with `finish`, which prints the line
# tools/run-tests adds up ("N passed, N failed") and sets the exit status.

root=$(cd "$(dirname "$0")/../.." && pwd)
passed=0
failed=0
work=$(mktemp -d "${TMPDIR:-/tmp}/sentry-host-XXXXXX")
own_fake=""

pass() {
  passed=$((passed + 1))
  echo "ok - $1"
}

# fail DESCRIPTION [DETAILS]: DETAILS (e.g. captured output) is shown indented.
fail() {
  failed=$((failed + 1))
  echo "FAILED - $1"
  if [ -n "${2:-}" ]; then printf '%s\n' "$2" | sed 's/^/    /'; fi
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

# Prints the summary line; the suite's exit status follows the failures.
finish() {
  echo "$passed passed, $failed failed"
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
