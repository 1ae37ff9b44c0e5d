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

# chatd benchmark: the Ollama fake direct vs through chatd (c1, c16); 64 streams of 256 chunks direct vs gateway+chatd
bench-chatd *args:
    uv run python -m scripts.bench_chatd {{args}}

# Soak (not in verify): N minutes at c64 through the gateway, 5% of clients aborting mid-body; RSS, sockets, 5xx
soak *args:
    uv run python -m scripts.soak {{args}}

# The console's 5 s /v1/health poll against a whole stack for 10 minutes: every false "down" counted.
soak-health *args:
    uv run python -m scripts.soak_health {{args}}

# Keys benchmark: gateway req/s and added p50 with a client key vs the root token; chatd c16 with the spend ledger on vs off
bench-keys *args:
    uv run python -m scripts.bench_keys {{args}}

# Log benchmark: observerd appends/s with fsync on (c1, c16) and the replay time of a generated 1 GiB log
bench-logs *args:
    uv run python -m scripts.bench_logs {{args}}

# storaged benchmark: 256 MiB PUT/GET MB/s direct, through the gateway and `cp` on the same disk; 4 KiB GET req/s at c16
bench-storage *args:
    uv run python -m scripts.bench_storage {{args}}

# Ingest benchmark: a generated 200 MiB CSV through the gateway vs pyarrow and DuckDB in-process; ingestd's peak RSS
bench-ingest *args:
    uv run python -m scripts.bench_ingest {{args}}

# SQL benchmark: small-aggregate p50/p99 and full-scan Arrow MB/s, through the gateway vs in-process DuckDB (10M rows)
bench-sql *args:
    uv run python -m scripts.bench_sql {{args}}

# Mutation testing (mutmut, config in pyproject [tool.mutmut]) with the fast tests; not part of verify. Takes mutant
# name globs; the default is the security-relevant set (auth, header rules, path checks, the proxy's entry point).
mutate *names='"shared.web.auth*" "gateway.headers*" "gateway.proxy.x_has_dot_dot_segment*" "gateway.proxy.xǁFamilyProxyǁ__call__*"':
    uv run mutmut run --max-children 2 {{names}}
    uv run mutmut results | grep -v ': not checked$' || true

# Vector benchmark: 100k x 384 clustered vectors; recall@10, query p50/p99 and upsert rate via the gateway vs in-process
bench-vectors *args:
    uv run python -m scripts.bench_vectors {{args}}

# Embedding benchmark: the built-in model's texts/s (batch 64) in-process and via embedd; cache-hit req/s at c16
bench-embed *args:
    uv run python -m scripts.bench_embed {{args}}

# Iceberg catalog benchmark: load p50 and append commits/s vs pyiceberg's SqlCatalog; a 1M-row scan vs DuckDB direct
bench-iceberg *args:
    uv run python -m scripts.bench_iceberg {{args}}

# S3 API benchmark: 256 MiB GET and PUT (boto3 multipart, presigned curl) vs the native API, 4 KiB GETs at c16
bench-s3 *args:
    uv run python -m scripts.bench_s3 {{args}}

# vectord restart: time to serve a 100k x 384 index after SIGTERM and after kill -9, vs usearch restore / batch add
bench-vectors-restart *args:
    uv run python -m scripts.bench_vectors_restart {{args}}
