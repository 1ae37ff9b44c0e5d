"""The web console: a few pages served by the gateway, talking to the stack only through its public API.

The overview is rendered on the server, so it reads without JavaScript; the other pages are static shells that
`console.js` fills in by calling the same /v1 endpoints any client calls, with the same token. Pages and assets need
no token (a browser cannot send one before it has asked for it); every API call they make does.
"""

from __future__ import annotations

from html import escape
from pathlib import Path
from string import Template
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

STATIC_DIR = Path(__file__).with_name("static")
PAGES_DIR = Path(__file__).with_name("pages")
CONSOLE_PREFIX = "/console"
# What the auth middleware lets through without a token: the page shells and their assets, nothing of /v1.
PUBLIC_PATHS = frozenset({"/", CONSOLE_PREFIX, CONSOLE_PREFIX + "/"})
PUBLIC_PREFIXES = (CONSOLE_PREFIX + "/",)

PAGES: dict[str, str] = {
    "overview": "Overview",
    "datasets": "Datasets",
    "chat": "Chat",
    "vectors": "Vectors",
    "keys": "Keys",
}


def page_path(page: str) -> str:
    return "/" if page == "overview" else f"{CONSOLE_PREFIX}/{page}"


def render_page(page: str, main: str, *, auth_required: bool) -> str:
    current = {name: ' aria-current="page"' if name == page else "" for name in PAGES}
    nav = "\n".join(f'<li><a href="{page_path(name)}"{current[name]}>{title}</a></li>' for name, title in PAGES.items())
    shell = Template((PAGES_DIR / "page.html").read_text())
    return shell.substitute(
        title=PAGES[page],
        page=page,
        nav=nav,
        main=main,
        auth="required" if auth_required else "off",
    )


def health_rows(report: dict[str, Any]) -> str:
    rows = []
    for name, result in report["services"].items():
        status = escape(result["status"])
        detail = escape(result.get("detail", ""))
        rows.append(
            f'<tr><th scope="row">{escape(name)}</th><td class="status-{status}">{status}</td>'
            f'<td class="num">{result["latency_ms"]:.1f}</td><td>{detail}</td></tr>'
        )
    return "\n".join(rows)


def overview_main(report: dict[str, Any] | None) -> str:
    if report is None:
        body = '<tr><td colspan="4">Sign in with the stack token to see the services.</td></tr>'
        summary = "unknown"
    else:
        body = health_rows(report)
        summary = escape(report["status"])
    return (PAGES_DIR / "overview.html").read_text().replace("$rows", body).replace("$summary", summary)


def create_console_routes(*, auth_required: bool) -> list[BaseRoute]:
    static_pages = {name: (PAGES_DIR / f"{name}.html").read_text() for name in PAGES if name != "overview"}

    async def overview(request: Request) -> Response:
        # Without a token the server can show the health table itself; with one, the page asks for it first.
        report = None if auth_required else await request.app.state.prober.probe_all()
        return HTMLResponse(render_page("overview", overview_main(report), auth_required=auth_required))

    async def page(request: Request) -> Response:
        name = request.path_params["page"]
        if name not in static_pages:
            return HTMLResponse(
                render_page("overview", "<p>No such console page.</p>", auth_required=auth_required), 404
            )
        return HTMLResponse(render_page(name, static_pages[name], auth_required=auth_required))

    async def console_root(request: Request) -> Response:
        return RedirectResponse("/", status_code=308)

    return [
        Route("/", overview, methods=["GET", "HEAD"]),
        Route(CONSOLE_PREFIX, console_root, methods=["GET", "HEAD"]),
        Route(CONSOLE_PREFIX + "/", console_root, methods=["GET", "HEAD"]),
        Mount(CONSOLE_PREFIX + "/static", StaticFiles(directory=STATIC_DIR), name="console-static"),
        Route(CONSOLE_PREFIX + "/{page}", page, methods=["GET", "HEAD"]),
    ]
