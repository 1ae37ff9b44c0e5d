"""Read-only by DuckDB's own parser: exactly one statement, and only a statement type that reads.

SELECT covers WITH, VALUES, FROM-first, DESCRIBE, SUMMARIZE, SHOW and the PRAGMAs DuckDB rewrites into SELECTs.
EXPLAIN is allowed when the statement it explains is. Everything else (CREATE, INSERT, ATTACH, COPY, EXPORT,
INSTALL/LOAD, SET/RESET/USE, CALL, PRAGMA, transactions, PREPARE/EXECUTE, ...) is refused. The file settings
(enable_external_access, allowed_paths) would not stop ATTACH ':memory:', CREATE TABLE or a second statement; this
does.

Reading statements that would show the server's own paths are refused too (403 forbidden): the settings
(`duckdb_settings()`, `current_setting()`: the object root, the spill directory), the views' definitions (which
name each data file by its absolute path), the temporary and cached files, EXPLAIN ANALYZE (its profile names the
files read), and `query()`/`query_table()`, which would run any of those from a string. Names are matched on
DuckDB's own tokens, quoted or not, in any case.
"""

from __future__ import annotations

import duckdb

from shared.errors import LakehouseError

READING = frozenset({duckdb.StatementType.SELECT})
# Functions, views and tables whose answers hold server paths or settings (names as DuckDB 1.5 has them).
REVEALING = frozenset(
    {
        "current_setting",
        "duckdb_settings",
        "duckdb_views",
        "duckdb_secrets",
        "which_secret",
        "duckdb_temporary_files",
        "duckdb_external_file_cache",
        "duckdb_extensions",
        "duckdb_databases",
        "duckdb_memory",
        "duckdb_logs",
        "duckdb_log_contexts",
        "duckdb_prepared_statements",
        "pragma_database_size",
        "pragma_metadata_info",
        "query_table",
        "sqlite_master",
        "sqlite_schema",
        "sqlite_temp_master",
        "sqlite_temp_schema",
        "pg_views",
    }
)
WORDS = (duckdb.token_type.identifier, duckdb.token_type.keyword)


def _words(sql: str) -> list[tuple[str, bool]]:
    """Each token but comments, as (normalised text, is a word); quoted identifiers unquoted."""
    tokens = [t for t in duckdb.tokenize(sql) if t[1] != duckdb.token_type.comment]
    out = []
    for i, (offset, kind) in enumerate(tokens):
        end = tokens[i + 1][0] if i + 1 < len(tokens) else len(sql)
        text = sql[offset:end].strip()
        if kind in WORDS and len(text) >= 2 and text[0] == text[-1] == '"':
            text = text[1:-1].replace('""', '"')
        out.append((text.lower(), kind in WORDS))
    return out


def check_reveals_nothing(sql: str) -> None:
    """403 forbidden when `sql` names a function or table whose answer would show the server's paths or settings."""
    lowered = sql.lower()
    # Every name refused below is in the lowered text as written (DuckDB has no escapes inside identifiers), so
    # most queries skip the tokenizer (~70 µs for a short query).
    if not any(name in lowered for name in (*REVEALING, "query", "views")):
        return
    words = _words(sql)
    for i, (text, is_word) in enumerate(words):
        if not is_word:
            continue
        after = words[i + 1][0] if i + 1 < len(words) else ""
        before = [w[0] for w in words[max(0, i - 2) : i]]
        if (
            text in REVEALING
            or (text == "query" and after.startswith("("))
            or (text == "views" and before == ["information_schema", "."])
        ):
            name = "information_schema.views" if text == "views" else text
            raise LakehouseError("forbidden", f"{name} is not available to SQL: it shows server settings or paths")


def _analyzes(sql: str) -> bool:
    """True for EXPLAIN ANALYZE, also as an option (`EXPLAIN (ANALYZE, FORMAT json)`), found with DuckDB's tokenizer."""
    texts = [text for text, _ in _words(sql)]
    if len(texts) < 2:
        return False
    if texts[1] != "(":
        return texts[1].startswith("analyze")
    options = texts[2 : texts.index(")")] if ")" in texts else texts[2:]
    return any(o.startswith("analyze") for o in options)


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
    if depth == 0:
        check_reveals_nothing(sql)
    statement = statements[0]
    kind = statement.type
    if kind == duckdb.StatementType.EXPLAIN and depth == 0:
        inner = _explained(statement.query)
        if inner:
            read_only_statement(inner, connection, depth=1)
            if _analyzes(statement.query):
                # Its profile names every file a scan read by its absolute path, cut across the plan's boxes.
                raise LakehouseError("forbidden", "EXPLAIN ANALYZE is not available to SQL: it shows server paths")
            return statement
    if kind not in READING:
        raise LakehouseError(
            "read_only",
            f"only reading statements are allowed (SELECT, WITH, VALUES, EXPLAIN, DESCRIBE, SUMMARIZE, SHOW); "
            f"got {kind.name}",
        )
    return statement
