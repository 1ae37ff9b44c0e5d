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

# The vector plane: embed (Ollama fake and the built-in model), keep vectors in vectord, search with matrixd.
request POST "$gateway/v1/embed" '{"texts": ["red apples", "green pears", "fast cars"]}'
check "/v1/embed → three vectors from the default model (Ollama fake)" \
    test "$STATUS:$(json 'b["model"], len(b["embeddings"]), b["dimensions"]')" = "200:nomic-embed-text 3 16"
vectors=$(json '__import__("json").dumps(b["embeddings"])')

request POST "$gateway/v1/embed" '{"text": "no Ollama needed", "model": "builtin/all-minilm-l6-v2"}'
check "/v1/embed with the built-in model → 384 dimensions" \
    test "$STATUS:$(json 'b["dimensions"]')" = "200:384"

request PUT "$gateway/v1/vectors/smoke" '{"dimensions": 16, "metric": "cosine"}'
check "PUT /v1/vectors/smoke → 201 created" test "$STATUS" = "201"

items=$($PY -c "
import json, sys; v = json.loads(sys.argv[1])
print(json.dumps({'items': [{'id': t, 'vector': x, 'metadata': {'n': i}}
                            for i, (t, x) in enumerate(zip(['red apples', 'green pears', 'fast cars'], v))]}))" "$vectors")
request POST "$gateway/v1/vectors/smoke/upsert" "$items"
check "/v1/vectors/smoke/upsert → 3 upserted (persisted through storaged)" \
    test "$STATUS:$(json 'b["upserted"]')" = "200:3"

request POST "$gateway/v1/matrix/search" '{"query": "fast cars", "corpora": ["smoke", "absent"], "k": 2}'
check "/v1/matrix/search → the matching text first, the missing corpus in errors" \
    test "$STATUS:$(json 'b["matches"][0]["corpus"], b["matches"][0]["id"], list(b["errors"])')" \
    = "200:smoke fast cars ['absent']"

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
