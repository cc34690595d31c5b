"""The web app's pages as the server hands them out: every address of the
route table serves its shell under a policy that allows nothing inline and
nothing from elsewhere, and every file a page names is there."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from portal.http import WEB_APP_POLICY, WEB_APP_POLICY_WITH_DATA_IMAGES
from portal.webapp import DATA_IMAGE_PAGES, PAGES, PAGES_DIRECTORY, WEB_DIRECTORY

ADDRESSES = {path: path.format(practice="north", patient="some-id") for path in PAGES}


@pytest.mark.parametrize("address", ADDRESSES, ids=ADDRESSES)
async def test_each_page_is_its_shell_under_the_strict_policy(
    http: httpx.AsyncClient, address: str
) -> None:
    name = PAGES[address]
    response = await http.get(ADDRESSES[address], headers={"Accept": "text/html"})

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    policy = WEB_APP_POLICY_WITH_DATA_IMAGES if name in DATA_IMAGE_PAGES else WEB_APP_POLICY
    assert response.headers["content-security-policy"] == policy
    assert "unsafe" not in policy
    assert response.headers["cache-control"] == "no-store"
    assert f'src="/web/js/pages/{name}.js"' in response.text


def test_shells_hold_no_inline_script_or_style_and_name_only_files_that_exist() -> None:
    for shell in PAGES_DIRECTORY.glob("*.html"):
        html = shell.read_text()
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), shell.name
        assert not re.search(r"\sstyle=|<style|\son[a-z]+=", html), shell.name
        for asset in re.findall(r'(?:src|href)="/web/([^"]+)"', html):
            assert (WEB_DIRECTORY / asset).is_file(), (shell.name, asset)


def test_every_module_imports_files_that_exist() -> None:
    for module in (WEB_DIRECTORY / "js").rglob("*.js"):
        for target in re.findall(r'from "(\.[^"]+)"', module.read_text()):
            assert (module.parent / target).resolve().is_file(), (module, target)


async def test_only_the_pages_with_the_qr_code_allow_data_images(
    http: httpx.AsyncClient,
) -> None:
    account = await http.get("/north/account", headers={"Accept": "text/html"})
    sign_in = await http.get("/north/sign-in", headers={"Accept": "text/html"})
    unknown = await http.get("/north/elsewhere/account", headers={"Accept": "text/html"})

    assert "img-src 'self' data:;" in account.headers["content-security-policy"]
    assert sign_in.headers["content-security-policy"] == WEB_APP_POLICY
    assert unknown.headers["content-security-policy"] == WEB_APP_POLICY
    assert "data:" not in WEB_APP_POLICY


async def test_the_staff_address_leads_to_the_patients(http: httpx.AsyncClient) -> None:
    staff = await http.get("/north/staff")

    assert (staff.status_code, staff.headers["location"]) == (302, "/north/staff/patients")


async def test_scripts_and_styles_are_served_with_their_types(http: httpx.AsyncClient) -> None:
    script = await http.get("/web/js/api.js")
    style = await http.get("/web/css/portal.css")

    assert script.status_code == style.status_code == 200
    assert "javascript" in script.headers["content-type"]
    assert style.headers["content-type"].startswith("text/css")
    assert Path(WEB_DIRECTORY / "js" / "api.js").read_bytes() == script.content
