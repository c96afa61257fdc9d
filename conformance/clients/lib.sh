# Shared by the client scripts: the environment the runner gives them, and `step`, which
# runs one step's command with its output in $WORK/<step>.log and prints the result line
#   RESULT <step> pass|fail|n/a <detail>
# that the runner reads.
: "${ACME_DIRECTORY:?}" "${ACME_CA_FILE:?}" "${CHALLTESTSRV_URL:?}" "${DNS_SERVER:?}"
: "${HTTP01_PORT:?}" "${CLIENT_IP:=127.0.0.2}" "${SUFFIX:?}" "${WORK:?}"
HOOK="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/challtestsrv-hook"
export CHALLTESTSRV_URL
STEP_TIMEOUT=${STEP_TIMEOUT:-120}

step() {
  local name=$1
  shift
  if timeout "$STEP_TIMEOUT" "$@" >"$WORK/$name.log" 2>&1; then
    echo "RESULT $name pass"
  else
    local why
    why=$(grep -v '^\s*$' "$WORK/$name.log" | tail -n 1 | cut -c1-160)
    echo "RESULT $name fail ${why:-exit status $?}"
    return 1
  fi
}

not_applicable() { echo "RESULT $1 n/a $2"; }
