"""GET /ui: the scoring playground and A/B report viewer, three static files (package data).

The page is served to anyone, without an API key, on purpose: a browser navigating to /ui
cannot send an `Authorization: Bearer` header, and the shell is the same static HTML, script
and stylesheet for every caller, holding no data, no key and nothing about this deployment.
Everything the page shows comes from the API calls its script makes, each with the key the
user types into the page (kept in the tab's sessionStorage), so a server with keys answers
those calls 401/403/429 exactly as it answers any other client, and the page shows why.
The strict Content-Security-Policy (same-origin script and style, no inline code) holds: the
page has no inline script, style or handler.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

from fastapi import APIRouter
from fastapi.responses import Response

router = APIRouter(include_in_schema=False)  # a page, not part of the API

# File -> media type: a fixed list, so no request path ever reaches the filesystem.
_FILES = {
    "index.html": "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "app.css": "text/css; charset=utf-8",
}


@cache
def _read(name: str) -> bytes:
    return (resources.files("service") / "ui" / "static" / name).read_bytes()


def _static(name: str) -> Response:
    # no-cache: revalidated on each load, so a new release's page never runs an old script.
    return Response(_read(name), media_type=_FILES[name], headers={"Cache-Control": "no-cache"})


@router.get("/ui")
async def page() -> Response:
    """The playground's shell; its script makes every data call with the user's key."""
    return _static("index.html")


@router.get("/ui/app.js")
async def script() -> Response:
    return _static("app.js")


@router.get("/ui/app.css")
async def stylesheet() -> Response:
    return _static("app.css")
