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

$PY -m scripts.stack_config "$work/lakehouse.toml" "http://127.0.0.1:$fake_port" "$work"
gateway=$($PY -c "
import tomllib; print('http://' + tomllib.load(open('$work/lakehouse.toml', 'rb'))['gateway']['bind'])")

echo "starting the stack (log: $work/up.log)"
LH_PATHWAYD__PERSIST_PATH="$work/pathway.jsonl" LH_OBSERVERD__PERSIST_PATH="$work/ops.jsonl" \
env -u OLLAMA_CLOUD_KEY -u OPENROUTER_API_KEY -u OPENCODE_API_KEY -u KIMI_API_KEY \
    $PY -m shared.stack.cli up --config "$work/lakehouse.toml" >"$work/up.log" 2>&1 &
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

printf 'smoke object %s\n' "$work" >"$work/object.txt"
STATUS=$(curl -sS -o "$work/put.json" -w '%{http_code}' -X PUT -H 'content-type: text/plain' \
    --data-binary @"$work/object.txt" "$gateway/v1/storage/objects/smoke/hello.txt")
check "/v1/storage: PUT an object through the gateway → 201" test "$STATUS" = "201"
STATUS=$(curl -sS -o "$work/got.txt" -w '%{http_code} %{content_type}' "$gateway/v1/storage/objects/smoke/hello.txt")
check "/v1/storage: GET it back through the gateway, same bytes and type" \
    test "$STATUS:$(cmp -s "$work/object.txt" "$work/got.txt" && echo same)" = "200 text/plain:same"
check "/v1/storage: the object is a file under storaged's root" cmp -s "$work/object.txt" "$work/objects/smoke/hello.txt"

request GET "$gateway/v1/catalog/datasets"
check "/v1/catalog: the dataset list through the gateway (empty, catalogd on storaged)" \
    test "$STATUS:$(json 'b["datasets"]')" = "200:[]"

status=$(curl -sS -o "$work/ingest.json" -w '%{http_code}' -F file=@scripts/data/trips.csv "$gateway/v1/ingest/smoke_trips")
BODY=$(cat "$work/ingest.json")
check "/v1/ingest: scripts/data/trips.csv (multipart) → 201, 20 rows" test "$status:$(json 'b.get("rows")')" = "201:20"

request POST "$gateway/v1/sql/refresh"
request POST "$gateway/v1/sql" '{"sql": "select count(*), sum(passengers) from smoke_trips"}'
check "/v1/sql: the ingested CSV answers SQL through the gateway" test "$STATUS:$(json 'b["rows"]')" = "200:[[20, 35]]"

status=$(curl -sS -o "$work/ingest.json" -w '%{http_code}' -H 'content-type: text/csv' \
    --data-binary @scripts/data/seattle-weather.csv "$gateway/v1/ingest/seattle_weather")
BODY=$(cat "$work/ingest.json")
check "/v1/ingest: scripts/data/seattle-weather.csv (real NOAA data, raw body) → 201, 1461 rows" \
    test "$status:$(json 'b.get("rows")')" = "201:1461"
request POST "$gateway/v1/sql/refresh"
request POST "$gateway/v1/sql" '{"sql": "select weather, count(*) n, round(avg(temp_max), 1) warmest, max(strptime(date, '"'"'%Y/%m/%d'"'"'))::date last_day from seattle_weather group by weather order by n desc limit 1"}'
check "/v1/sql: the weather data answers through the gateway (sunniest: 714 days)" \
    test "$STATUS:$(json 'b["rows"]')" = "200:[['sun', 714, 19.4, '2015-12-31']]"

request POST "$gateway/v1/chat" '{"model": "qwen3.5:latest", "messages": [{"role": "user", "content": "ping"}]}'
check "/v1/chat → a real answer from chatd (Ollama fake)" \
    test "$STATUS:$(json 'b["provider"], b["content"]')" = "200:ollama echo: ping"

request POST "$gateway/v1/chat/completions" \
    '{"model": "qwen3.5:latest", "messages": [{"role": "user", "content": "ping pong"}], "stream": true}'
streamed=$(printf '%s' "$BODY" | grep '^data: ' | sed 's/^data: //' | $PY -c "
import json, sys
lines = sys.stdin.read().strip().split(chr(10))
chunks = [json.loads(l) for l in lines[:-1]]
print(lines[-1], repr(''.join(c['choices'][0]['delta'].get('content', '') for c in chunks if c['choices'])))")
check "/v1/chat/completions streamed through the gateway: chunks that join to the answer, then [DONE]" \
    test "$STATUS:$streamed" = "200:[DONE] 'echo: ping pong'"

request POST "$gateway/v1/chat" \
    '{"model": "qwen3.5:latest", "messages": [{"role": "user", "content": "ping"}], "stream": true}'
last=$(printf '%s' "$BODY" | tail -n 1)
check "/v1/chat streamed through the gateway: NDJSON deltas, then the native fields with done" \
    test "$STATUS:$(BODY=$last json 'b["done"], b["content"]')" = "200:True echo: ping"

request GET "$gateway/v1/models"
check "/v1/models through the gateway: an OpenAI model list" \
    test "$STATUS:$(json 'b["object"], "ollama/qwen3.5:latest" in [m["id"] for m in b["data"]]')" = "200:list True"

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

request POST "$gateway/v1/pathway/traces" '{"kind": "smoke", "steps": [{"name": "one", "output": 1}], "id": "smoke-1"}'
check "/v1/pathway/traces: a trace written through the gateway" test "$STATUS:$(json 'b["id"], b["seq"]')" = "201:smoke-1 1"
request GET "$gateway/v1/pathway/traces/smoke-1"
check "/v1/pathway/traces/smoke-1: the trace read back" \
    test "$STATUS:$(json 'b["kind"], b["steps"][0]["output"]')" = "200:smoke 1"

request POST "$gateway/v1/observer/ops" '{"service": "smoke", "op": "check", "status": "ok", "duration_ms": 2}'
check "/v1/observer/ops: an op written through the gateway" test "$STATUS:$(json 'b["seq"]')" = "201:1"
request GET "$gateway/v1/observer/ops?service=smoke"
check "/v1/observer/ops?service=smoke: the op read back" \
    test "$STATUS:$(json '[(i["op"], i["duration_ms"]) for i in b["items"]], b["next"]')" = "200:[('check', 2.0)] None"

scraped=$(curl -sS "$gateway/metrics")
counted=$(printf '%s' "$scraped" | $PY -c "
import sys
from prometheus_client.parser import text_string_to_metric_families
print(sum(s.value for f in text_string_to_metric_families(sys.stdin.read()) for s in f.samples
          if s.name == 'lakehouse_http_requests_total' and s.labels.get('family') in ('pathway', 'observer')))")
check "gateway /metrics: parsed, counts the 4 pathway and observer requests" test "$counted" = "4.0"

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
