# shellcheck shell=sh
# TAP (the Test Anything Protocol) helpers, sourced by tools/run-tests and the
# host suites (spec/hosts/lib.sh): counts come from a stream's result lines and
# its plan, never from a tool's own wording.

# tap_count FILE: sets tap_ok, tap_not_ok and tap_plan (empty without a plan).
# A bare "ok" line is prove's verdict on a whole file, not a test.
tap_count() {
  tap_ok=$(grep -a -c -E '^ok ' "$1")
  tap_not_ok=$(grep -a -c -E '^not ok ' "$1")
  tap_plan=$(sed -n 's/^1\.\.\([0-9][0-9]*\).*/\1/p' "$1" | tail -n 1)
}

# tap_complete: the stream last counted ran to the end of its plan.
tap_complete() {
  [ -n "$tap_plan" ] && [ "$tap_plan" -eq $((tap_ok + tap_not_ok)) ]
}

# tap_failures FILE: each "not ok" line with the comment lines that follow it.
tap_failures() {
  awk '/^not ok/ { show = 1; print; next } /^(ok|not ok)/ { show = 0 } show && /^#/ { print }' "$1"
}
