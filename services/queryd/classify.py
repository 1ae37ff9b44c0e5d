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


def read_only_statement(
    sql: str, connection: duckdb.DuckDBPyConnection | None = None, *, depth: int = 0
) -> duckdb.Statement:
    """The one reading statement `sql` holds, parsed by DuckDB on `connection` (the module's default when None).

    Raises 400 `read_only` unless it is exactly one reading statement (400 `invalid_request` if it does not parse).
    Executing the returned statement runs exactly what was classified, and parses `sql` only once.
    """
    try:
        statements = duckdb.extract_statements(sql, connection=connection)
    except duckdb.Error as exc:
        raise LakehouseError("invalid_request", str(exc)) from None
    if not statements:
        raise LakehouseError("invalid_request", "sql holds no statement")
    if len(statements) > 1:
        raise LakehouseError("read_only", f"expected exactly one statement, got {len(statements)}")
    statement = statements[0]
    kind = statement.type
    if kind == duckdb.StatementType.EXPLAIN and depth == 0:
        inner = _explained(statement.query)
        if inner:
            read_only_statement(inner, connection, depth=1)
            return statement
    if kind not in READING:
        raise LakehouseError(
            "read_only",
            f"only reading statements are allowed (SELECT, WITH, VALUES, EXPLAIN, DESCRIBE, SUMMARIZE, SHOW); "
            f"got {kind.name}",
        )
    return statement


def check_read_only(sql: str) -> None:
    """Raise as read_only_statement does unless `sql` is one reading statement."""
    read_only_statement(sql)
