"""The web app's pages: a route table from addresses to page shells.

Each page is a pair in portal/web/: `pages/<name>.html`, static markup with
no inline script or style, and `js/pages/<name>.js`, the ES module it loads.
The shell is the same for everyone; the module reads the practice from the
address and asks /graphql (through `js/api.js`) for everything else, so the
server never renders data into a page. To add a page: add its row here and
its two files (see README, "The web app").
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

WEB_DIRECTORY = Path(__file__).parent / "web"
PAGES_DIRECTORY = WEB_DIRECTORY / "pages"

# Address (under the practice's slug) -> page name. Patients' pages first,
# then staff pages under /staff/.
PAGES: dict[str, str] = {
    "/{practice}/sign-up": "sign-up",
    "/{practice}/sign-in": "sign-in",
    "/{practice}/account": "account",
    "/{practice}/staff/sign-in": "staff-sign-in",
    "/{practice}/staff/patients": "staff-patients",
    "/{practice}/staff/patients/{patient}": "staff-patient",
    # Staff administration (ADMIN; others are told the page is not for their role).
    "/{practice}/staff/team": "staff-team",
    "/{practice}/staff/audit": "staff-audit",
    # Phase 2, the account side: recovery, the account page (patients' and
    # staff's alike) and the enrolment staff are sent to when it is required.
    "/{practice}/forgot-password": "forgot-password",
    "/{practice}/reset-password": "reset-password",
    "/{practice}/staff/account": "account",
    "/{practice}/staff/two-step": "staff-two-step",
}
# Pages that show the two-step QR code, an SVG `data:` image drawn by the
# service (beginMfaEnrollment.qrCode): only their policy allows `img-src data:`.
DATA_IMAGE_PAGES = frozenset({"account", "staff-two-step"})
# An address people type. (Not `/{practice}` alone: any unknown path of
# one segment would then answer with a redirect instead of 404.)
REDIRECTS: dict[str, str] = {
    "/{practice}/staff": "/{practice}/staff/patients",
}


def shows_data_images(path: str) -> bool:
    """Whether `path` is the address of a page of DATA_IMAGE_PAGES."""
    return _DATA_IMAGE_ADDRESSES.fullmatch(path) is not None


_DATA_IMAGE_ADDRESSES = re.compile(
    "|".join(
        re.sub(r"\\\{[a-z]+\\\}", "[^/]+", re.escape(address))
        for address, name in PAGES.items()
        if name in DATA_IMAGE_PAGES
    )
)

Endpoint = Callable[[Request], Awaitable[Response]]


def _page(name: str) -> Endpoint:
    shell = PAGES_DIRECTORY / f"{name}.html"
    if not shell.is_file():
        raise RuntimeError(f"the web app's page {name!r} has no {shell}")

    async def serve(request: Request) -> Response:
        return FileResponse(shell, media_type="text/html; charset=utf-8")

    return serve


def _redirect(target: str) -> Endpoint:
    async def redirect(request: Request) -> Response:
        return RedirectResponse(target.format(**request.path_params), status_code=302)

    return redirect


def routes() -> list[BaseRoute]:
    """The web app's routes, after the API's (a practice slugged `graphql`,
    `health`, `static` or `web` would have no pages)."""
    table: list[BaseRoute] = [
        Mount("/web", StaticFiles(directory=WEB_DIRECTORY), name="web"),
    ]
    table += [Route(path, _page(name), methods=["GET"]) for path, name in PAGES.items()]
    table += [Route(path, _redirect(target), methods=["GET"]) for path, target in REDIRECTS.items()]
    return table
