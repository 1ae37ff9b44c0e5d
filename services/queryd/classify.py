"""Read-only by DuckDB's own parser: exactly one statement, and only a statement type that reads.

SELECT covers WITH, VALUES, FROM-first, DESCRIBE, SUMMARIZE, SHOW and the PRAGMAs DuckDB rewrites into SELECTs.
EXPLAIN is allowed when the statement it explains is (EXPLAIN ANALYZE runs it). Everything else (CREATE, INSERT,
ATTACH, COPY, EXPORT, INSTALL/LOAD, SET/RESET/USE, CALL, PRAGMA, transactions, PREPARE/EXECUTE, ...) is refused.
The file settings (enable_external_access, allowed_directories) would not stop ATTACH ':memory:', CREATE TABLE or a
second statement; this does.
"""

from __future__ import annotations

import duckdb

from shared.errors import LakehouseError

READING = frozenset({duckdb.StatementType.SELECT})


def _explained(sql: str) -> str:
    """The statement after EXPLAIN [ANALYZE] [(options)], found with DuckDB's tokenizer."""
    tokens = duckdb.tokenize(sql)
    index = 1
    if index < len(tokens) and sql[tokens[index][0] :].lower().startswith("analyze"):
        index += 1
    if index < len(tokens) and sql[tokens[index][0]] == "(":
        depth = 0
        while index < len(tokens):
            text = sql[tokens[index][0]]
            depth += {"(": 1, ")": -1}.get(text, 0)
            index += 1
            if depth == 0:
                break
    if index >= len(tokens):
        return ""
    return sql[tokens[index][0] :]


def check_read_only(sql: str, *, depth: int = 0) -> None:
    """Raise 400 `read_only` unless `sql` is one reading statement (400 `invalid_request` if it does not parse)."""
    try:
        statements = duckdb.extract_statements(sql)
    except duckdb.Error as exc:
        raise LakehouseError("invalid_request", str(exc)) from None
    if not statements:
        raise LakehouseError("invalid_request", "sql holds no statement")
    if len(statements) > 1:
        raise LakehouseError("read_only", f"expected exactly one statement, got {len(statements)}")
    kind = statements[0].type
    if kind == duckdb.StatementType.EXPLAIN and depth == 0:
        inner = _explained(statements[0].query)
        if inner:
            check_read_only(inner, depth=1)
            return
    if kind not in READING:
        raise LakehouseError(
            "read_only",
            f"only reading statements are allowed (SELECT, WITH, VALUES, EXPLAIN, DESCRIBE, SUMMARIZE, SHOW); "
            f"got {kind.name}",
        )
