#!/usr/bin/env bash
# chatd acceptance: starts chatd and a gateway in front of it (and the Ollama fake unless OLLAMA_URL names a real
# Ollama), checks the native and OpenAI APIs, whole and streamed, directly and through the gateway.
# SMOKE_MODEL picks the bare model for a real Ollama (default qwen3.5:latest, which the fake knows).
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/smoke_lib.sh

logs=$(mktemp -d)
model=${SMOKE_MODEL:-qwen3.5:latest}
if [ -z "${OLLAMA_URL:-}" ]; then
    fake_port=$(free_port)
    OLLAMA_URL="http://127.0.0.1:$fake_port"
    start "ollama fake" "$logs/ollama.log" $PY -m tests.support.fakes.ollama --port "$fake_port"
    wait_healthy "$OLLAMA_URL/api/tags" || exit 1
fi

chatd_port=$(free_port)
chatd="http://127.0.0.1:$chatd_port"
# No provider keys: only ollama may register, whatever this machine has in its environment or /etc/lakehouse.
start chatd "$logs/chatd.log" env -u OLLAMA_CLOUD_KEY -u OPENROUTER_API_KEY -u OPENCODE_API_KEY -u KIMI_API_KEY \
    LH_CONFIG=/dev/null/none.toml LH_CHATD__BIND="127.0.0.1:$chatd_port" LH_CHATD__OLLAMA_URL="$OLLAMA_URL" \
    LH_CHATD__OLLAMA_CLOUD_KEY_FILE=/dev/null/none LH_CHATD__OPENROUTER_KEY_FILE=/dev/null/none \
    LH_CHATD__OPENCODE_KEY_FILE=/dev/null/none LH_CHATD__KIMI_KEY_FILE=/dev/null/none \
    LH_CHATD__LEDGER_DIR="$logs/ledger" LH_CHATD__STORAGED_URL= LH_CHATD__CATALOGD_URL= \
    $PY -m shared.stack.cli serve chatd
wait_healthy "$chatd/health" || { cat "$logs/chatd.log"; exit 1; }

chat() { request POST "$chatd/v1/chat" "{\"model\": \"$1\", \"messages\": [{\"role\": \"user\", \"content\": \"say ok\"}]}"; }

request GET "$chatd/v1/chat/providers"
check "/v1/chat/providers lists exactly the registered providers (ollama only)" \
    test "$STATUS:$(json '[p["name"] for p in b["providers"]]')" = "200:['ollama']"

chat "$model"
check "bare model → ollama with content, token counts and latency" \
    test "$STATUS:$(json 'b["provider"], bool(b["content"]), type(b["prompt_tokens"]).__name__, b["latency_ms"] > 0')" \
    = "200:ollama True int True"

chat "ollama/$model"
answered="$STATUS:$(json 'b["model"]')"
seen=$model
if [ -n "${fake_port:-}" ]; then
    request GET "$OLLAMA_URL/_fake/requests"
    seen=$(json 'b[-1]["body"]["model"]')
fi
check "ollama/<m> → prefix stripped at the upstream" test "$answered:$seen" = "200:$model:$model"

chat "kimi-k2.6:cloud"
check "<m>:cloud with ollama_cloud unregistered → 404, no fall-through" \
    test "$STATUS:$(json 'b["error"]["code"]')" = "404:provider_not_registered"

chat "unknown/$model"
check "unknown/<m> → default provider with the name unchanged → 502" \
    test "$STATUS:$(json 'b["error"]["code"], "unknown/" in b["error"]["message"]')" = "502:upstream_error True"

request POST "$chatd/v1/chat" '{"messages": [{"role": "user", "content": "hi"}]}'
check "missing model field → 400" test "$STATUS:$(json 'b["error"]["code"]')" = "400:invalid_request"

gateway_port=$(free_port)
gateway="http://127.0.0.1:$gateway_port"
start gateway "$logs/gateway.log" env LH_CONFIG=/dev/null/none.toml LH_GATEWAY__BIND="127.0.0.1:$gateway_port" \
    LH_GATEWAY__CHATD_URL="$chatd" LH_GATEWAY__WORKERS=1 $PY -m shared.stack.cli serve gateway
wait_healthy "$gateway/health" || { cat "$logs/gateway.log"; exit 1; }
ask="\"model\": \"$model\", \"messages\": [{\"role\": \"user\", \"content\": \"say ok\"}]"

request POST "$gateway/v1/chat/completions" "{$ask}"
check "gateway → /v1/chat/completions: an OpenAI chat.completion naming the routed model" \
    test "$STATUS:$(json 'b["object"], b["model"], bool(b["choices"][0]["message"]["content"]), b["usage"]["total_tokens"] > 0')" \
    = "200:chat.completion ollama/$model True True"

request POST "$gateway/v1/chat/completions" "{$ask, \"stream\": true, \"stream_options\": {\"include_usage\": true}}"
sse() { printf '%s' "$BODY" | grep '^data: ' | sed 's/^data: //'; }
events=$(sse | $PY -c "
import json, sys
lines = sys.stdin.read().strip().split(chr(10))
chunks = [json.loads(l) for l in lines[:-1]]
print(lines[-1], chunks[0]['choices'][0]['delta']['role'], chunks[-1]['choices'], chunks[-1]['usage']['total_tokens'] > 0)")
check "gateway → streamed chat.completion.chunk events: role first, usage chunk, then [DONE]" \
    test "$STATUS:$events" = "200:[DONE] assistant [] True"

request POST "$gateway/v1/chat" "{$ask, \"stream\": true}"
last=$(printf '%s' "$BODY" | tail -n 1)
check "gateway → native /v1/chat stream: NDJSON deltas, then the native fields with done" \
    test "$STATUS:$(BODY=$last json 'b["done"], b["provider"], bool(b["content"])')" = "200:True ollama True"

request GET "$gateway/v1/models"
check "gateway → /v1/models: tiers and the local Ollama's models" \
    test "$STATUS:$(json '"local_fast" in [m["id"] for m in b["data"]], any(m["id"].startswith("ollama/") for m in b["data"])')" \
    = "200:True True"

summary
