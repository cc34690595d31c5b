"""GraphiQL (development only) loads everything from the service itself: a
health service's admin tools pull no script from a third party, and the
explorer works behind a firewall."""

from __future__ import annotations

import base64
import hashlib
import re
from html.parser import HTMLParser

import httpx

from tests.test_http_edge import csp_directives, graphiql_page


class References(HTMLParser):
    """Every address the page refers to, and its inline scripts."""

    def __init__(self) -> None:
        super().__init__()
        self.addresses: list[tuple[str, str, str | None]] = []  # (tag, address, integrity)
        self.inline_scripts = 0
        self._in_script_without_src = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        for name in ("src", "href"):
            address = attributes.get(name)
            if address is not None:
                self.addresses.append((tag, address, attributes.get("integrity")))
        self._in_script_without_src = tag == "script" and "src" not in attributes

    def handle_data(self, data: str) -> None:
        if self._in_script_without_src and data.strip():
            self.inline_scripts += 1

    def handle_endtag(self, tag: str) -> None:
        self._in_script_without_src = False


async def test_the_graphiql_page_refers_to_no_other_origin(http: httpx.AsyncClient) -> None:
    page = await graphiql_page(http)

    assert page.status_code == 200
    references = References()
    references.feed(page.text)
    addresses = [address for _, address, _ in references.addresses]
    assert any(a.endswith("graphiql.min.js") for a in addresses)
    for address in addresses:
        assert address == "data:," or re.fullmatch(r"/static/graphiql/[\w.-]+", address), address
    assert references.inline_scripts == 0
    assert not re.search(r"https?://", page.text.split("<body>")[0])


async def test_its_policy_names_no_other_origin_and_allows_no_inline_script(
    http: httpx.AsyncClient,
) -> None:
    page = await graphiql_page(http)

    directives = csp_directives(page)
    assert directives["script-src"] == ["'self'"]
    assert directives["default-src"] == ["'self'"]
    assert directives["connect-src"] == ["'self'"]
    assert directives["frame-ancestors"] == ["'none'"]
    for sources in directives.values():
        for source in sources:
            assert source in ("'self'", "'none'", "'unsafe-inline'", "data:"), source


async def test_every_asset_is_served_as_pinned(http: httpx.AsyncClient) -> None:
    page = await graphiql_page(http)
    references = References()
    references.feed(page.text)

    pinned = [(a, integrity) for _, a, integrity in references.addresses if integrity]
    assert len(pinned) == 6  # React, ReactDOM, GraphiQL's script and styles, the explorer's
    for address, integrity in pinned:
        asset = await http.get(address)
        assert asset.status_code == 200, address
        assert asset.headers["content-type"].split(";")[0] in ("text/javascript", "text/css")
        digest = base64.b64encode(hashlib.sha384(asset.content).digest()).decode()
        assert integrity == f"sha384-{digest}", address
        assert asset.headers["cache-control"] == "no-cache"  # kept, checked by ETag
        assert "etag" in asset.headers
    ours = await http.get("/static/graphiql/explorer.js")
    assert ours.status_code == 200
    assert "GraphiQL.createFetcher" in ours.text


async def test_a_file_outside_the_static_folder_is_not_served(http: httpx.AsyncClient) -> None:
    for address in ("/static/../settings.py", "/static/graphiql/../../http.py", "/static/nope.js"):
        response = await http.get(address)
        assert response.status_code == 404, address
