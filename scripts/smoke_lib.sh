# Shared by the smoke scripts: free ports, waiting for /health, PASS/FAIL bookkeeping, JSON field access.
# Sourced, not run. Needs bash, curl and the project's Python (through uv).

PASSED=0
TOTAL=0
PIDS=()

PY="${PY:-uv run --quiet python}"

free_port() {
    $PY -c 'from scripts.net import free_port; print(free_port())'
}

cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT

# start NAME LOGFILE COMMAND...: run COMMAND in the background, remembered for cleanup.
start() {
    local name=$1 log=$2
    shift 2
    "$@" >"$log" 2>&1 &
    PIDS+=("$!")
    echo "started $name (pid $!, log $log)"
}

# wait_healthy URL [SECONDS]: poll URL until it answers 200.
wait_healthy() {
    local url=$1 deadline=$((SECONDS + ${2:-30}))
    until curl -fsS -o /dev/null "$url" 2>/dev/null; do
        if ((SECONDS > deadline)); then
            echo "FAIL: $url did not become healthy" >&2
            return 1
        fi
        sleep 0.2
    done
}

# check DESCRIPTION CONDITION...: run CONDITION (a command); print PASS or FAIL.
check() {
    local what=$1
    shift
    TOTAL=$((TOTAL + 1))
    if "$@"; then
        PASSED=$((PASSED + 1))
        echo "PASS $TOTAL: $what"
    else
        echo "FAIL $TOTAL: $what"
    fi
}

# request METHOD URL [BODY]: sets STATUS and BODY from one curl call.
request() {
    local out
    out=$(mktemp)
    STATUS=$(curl -sS -o "$out" -w '%{http_code}' -X "$1" -H 'content-type: application/json' ${3:+--data "$3"} "$2")
    BODY=$(cat "$out")
    rm -f "$out"
}

# json EXPRESSION: evaluate a Python expression over `b` (the parsed BODY) and print it.
json() {
    printf '%s' "$BODY" | $PY -c "import json, sys; b = json.load(sys.stdin); print($1)"
}

summary() {
    echo "$PASSED/$TOTAL PASS"
    [ "$PASSED" -eq "$TOTAL" ]
}
