# The lakehouse stack's tasks. `just` alone runs the whole verification CI runs.

set shell := ["bash", "-euo", "pipefail", "-c"]

# Everything CI checks: format, lint, types, tests, smokes
verify: fmt-check lint typecheck test smoke-chatd smoke-stack

# Run the test suite; arguments go to pytest (e.g. `just test -k chatd -x`)
test *args:
    uv run pytest {{args}}

# Lint with ruff
lint:
    uv run ruff check .

# Check formatting without changing files
fmt-check:
    uv run ruff format --check .

# Format and fix what ruff can fix
fmt:
    uv run ruff format .
    uv run ruff check --fix .

# Type-check the packages, tests and scripts (mypy strict)
typecheck:
    uv run mypy

# Run the whole stack (gateway + ten services) until Ctrl-C
up *args:
    uv run lakehouse up {{args}}

# Run one service, e.g. `just serve chatd`
serve name *args:
    uv run lakehouse serve {{name}} {{args}}

# Whole-stack acceptance: `lakehouse up` on free ports, every family through the gateway, clean Ctrl-C
smoke-stack:
    bash scripts/stack_smoke.sh

# chatd acceptance: six checks against the Ollama fake (or a real Ollama at $OLLAMA_URL)
smoke-chatd:
    bash scripts/chatd_smoke.sh

# Gateway benchmark: a hello upstream direct vs through the gateway (1 worker, one per core), c1 and c64
bench *args:
    uv run python -m scripts.bench_gateway {{args}}

# chatd benchmark: the Ollama fake direct vs through chatd, c1 and c16
bench-chatd *args:
    uv run python -m scripts.bench_chatd {{args}}

# Vector benchmark: 100k x 384 clustered vectors; recall@10, query p50/p99 and upsert rate via the gateway vs in-process
bench-vectors *args:
    uv run python -m scripts.bench_vectors {{args}}

# Embedding benchmark: the built-in model's texts/s (batch 64) in-process and via embedd; cache-hit req/s at c16
bench-embed *args:
    uv run python -m scripts.bench_embed {{args}}
