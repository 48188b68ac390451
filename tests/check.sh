# The tally the shell tests keep (source it): `check NAME COMMAND...` counts COMMAND's success or prints
# "FAIL: NAME", and `finish NAME` prints the closing "N passed, N failed" line and fails if any check did.
failures=0
passes=0

check() {
  local name=$1
  shift
  if "$@"; then
    passes=$((passes + 1))
  else
    echo "FAIL: $name"
    failures=$((failures + 1))
  fi
}

finish() {
  echo "$1: $passes passed, $failures failed"
  ((failures == 0))
}
