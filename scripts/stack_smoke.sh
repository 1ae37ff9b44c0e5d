#!/usr/bin/env bash
# Whole-stack acceptance: `lakehouse up` on free ports, then every family through the one gateway port,
# then Ctrl-C and a check that nothing is left behind.
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/smoke_lib.sh

work=$(mktemp -d)
fake_port=$(free_port)
start "ollama fake" "$work/ollama.log" $PY -m tests.support.fakes.ollama --port "$fake_port"
wait_healthy "http://127.0.0.1:$fake_port/api/tags" || exit 1

$PY -m scripts.stack_config "$work/lakehouse.toml" "http://127.0.0.1:$fake_port"
gateway=$($PY -c "
import tomllib; print('http://' + tomllib.load(open('$work/lakehouse.toml', 'rb'))['gateway']['bind'])")

echo "starting the stack (log: $work/up.log)"
env -u OLLAMA_CLOUD_KEY -u OPENROUTER_API_KEY -u OPENCODE_API_KEY -u KIMI_API_KEY \
    $PY -m shared.cli up --config "$work/lakehouse.toml" >"$work/up.log" 2>&1 &
up_pid=$!
PIDS+=("$up_pid")
if ! wait_healthy "$gateway/v1/health" 60; then
    grep -v '^{' "$work/up.log"
    exit 1
fi
grep -v '^{' "$work/up.log" | sed 's/^/  | /'

request GET "$gateway/v1/health"
check "/v1/health: gateway and all ten upstreams up" \
    test "$STATUS:$(json 'b["status"], len(b["services"]), all(s["status"] == "ok" for s in b["services"].values())')" \
    = "200:ok 10 True"

for family in catalog ingest sql pathway observer; do
    request GET "$gateway/v1/$family/anything?x=1"
    check "/v1/$family → 501 not_implemented from its stub" \
        test "$STATUS:$(json 'b["error"]["code"]')" = "501:not_implemented"
done

request POST "$gateway/v1/chat" '{"model": "qwen3.5:latest", "messages": [{"role": "user", "content": "ping"}]}'
check "/v1/chat → a real answer from chatd (Ollama fake)" \
    test "$STATUS:$(json 'b["provider"], b["content"]')" = "200:ollama echo: ping"

request GET "$gateway/v1/chat/providers"
check "/v1/chat/providers through the gateway lists ollama" \
    test "$STATUS:$(json '[p["name"] for p in b["providers"]]')" = "200:['ollama']"

ports=$($PY -c "
import tomllib; c = tomllib.load(open('$work/lakehouse.toml', 'rb'))
print(' '.join(s['bind'].rsplit(':', 1)[1] for s in c.values() if 'bind' in s))")
descendants() { for child in $(pgrep -P "$1"); do echo "$child"; descendants "$child"; done; }
children=$(descendants "$up_pid" | tr '\n' ' ')
kill -INT "$up_pid"
wait "$up_pid"
up_status=$?
PIDS=("${PIDS[@]/$up_pid/}")

left=""
for pid in $children; do kill -0 "$pid" 2>/dev/null && left+=" $pid"; done
bound=""
for port in $ports; do
    $PY -c "import socket; socket.create_server(('127.0.0.1', $port)).close()" 2>/dev/null || bound+=" $port"
done
check "Ctrl-C: lakehouse up exits 0, none of its $(wc -w <<<"$children") processes left (${left:-none}), no port bound (${bound:-none})" \
    test "$up_status:${left:-none}:${bound:-none}" = "0:none:none"

summary
