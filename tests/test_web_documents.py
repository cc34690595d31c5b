"""The web app's GraphQL documents: the committed manifest and documentIds are
made from portal/web/documents/ (`make web-documents`), and the service trusts
them with no setting, beside an operator's manifest, even in production."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import httpx
import pytest

from graph.trusted import document_id
from graph.web_documents import documents, generated_files
from portal.app import create_app
from portal.settings import Settings

PRACTICE_NAME = "query PracticeName($slug: String!) { practiceName(slug: $slug) }"


def test_the_committed_manifest_and_document_ids_are_fresh() -> None:
    for path, content in generated_files().items():
        assert path.read_text(encoding="utf-8") == content, (
            f"{path.name} is stale: run `make web-documents` and commit it"
        )


def test_each_document_is_one_operation_named_as_its_file() -> None:
    for name, text in documents().items():
        assert text.count("query ") + text.count("mutation ") == 1, name
        assert re.search(rf"\b(query|mutation) {name}\b", text), name


@pytest.mark.parametrize("production", [False, True], ids=["development", "production"])
async def test_the_web_apps_documents_run_beside_an_operators_manifest(
    settings: Settings, tmp_path: Path, production: bool
) -> None:
    operators = tmp_path / "operator.json"
    operators.write_text(json.dumps({document_id(PRACTICE_NAME): PRACTICE_NAME}))
    configured = dataclasses.replace(
        settings,
        trusted_documents=operators,
        env="production" if production else "development",
    )
    transport = httpx.ASGITransport(app=create_app(configured))
    async with httpx.AsyncClient(transport=transport, base_url="http://portal.test") as http:
        web = await http.post(
            "/graphql",
            json={"documentId": document_id(documents()["SignOut"])},
        )
        own = await http.post(
            "/graphql",
            json={"documentId": document_id(PRACTICE_NAME), "variables": {"slug": "none"}},
        )

    # In production nothing outside the two manifests would run.
    assert web.json() == {"data": {"logout": False}}
    assert own.json() == {"data": {"practiceName": None}}
