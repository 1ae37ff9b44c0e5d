"""The REST catalog's errors: the spec's ErrorModel, and which of the catalog's own errors become which."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response

from shared.errors import ErrorCode, LakehouseError
from shared.web.iceberg_errors import iceberg_error_body


class IcebergError(Exception):
    def __init__(self, status: int, kind: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.kind = kind
        self.message = message


def bad_request(message: str) -> IcebergError:
    return IcebergError(400, "BadRequestException", message)


def no_such_namespace(namespace: str) -> IcebergError:
    return IcebergError(404, "NoSuchNamespaceException", f"Namespace does not exist: {namespace}")


def no_such_table(identifier: str) -> IcebergError:
    return IcebergError(404, "NoSuchTableException", f"Table does not exist: {identifier}")


def already_exists(what: str) -> IcebergError:
    return IcebergError(409, "AlreadyExistsException", f"{what} already exists")


def commit_failed(message: str) -> IcebergError:
    return IcebergError(409, "CommitFailedException", message)


# What the catalog's own errors are in the spec's terms, where one reaches an Iceberg handler.
ICEBERG_BY_CODE: dict[ErrorCode, tuple[int, str]] = {
    "invalid_request": (400, "BadRequestException"),
    "not_found": (404, "NoSuchTableException"),
    "already_exists": (409, "AlreadyExistsException"),
    "version_conflict": (409, "CommitFailedException"),
    "schema_mismatch": (409, "CommitFailedException"),
    "corrupt_manifest": (500, "InternalServerError"),
    "upstream_unavailable": (503, "ServiceUnavailableException"),
    "upstream_timeout": (503, "ServiceUnavailableException"),
    "upstream_error": (503, "ServiceUnavailableException"),
}


def from_lakehouse(exc: LakehouseError) -> IcebergError:
    status, kind = ICEBERG_BY_CODE.get(exc.code, (exc.status, "RESTException"))
    return IcebergError(status, kind, exc.message)


def error_response(exc: IcebergError) -> Response:
    return Response(iceberg_error_body(exc.status, exc.kind, exc.message), exc.status, media_type="application/json")


Endpoint = Callable[[Request], Awaitable[Response]]


def speaks_iceberg(endpoint: Endpoint) -> Endpoint:
    """The endpoint's errors, its own and the catalog's, answered in the ErrorModel shape."""

    async def answer(request: Request) -> Response:
        try:
            return await endpoint(request)
        except IcebergError as exc:
            return error_response(exc)
        except LakehouseError as exc:
            return error_response(from_lakehouse(exc))

    return answer
