"""Trusted documents (GraphQL over HTTP's persisted documents): a manifest of
the operations the service's own clients send, `{"sha256:<hex>": "<document>"}`,
named by `PORTAL_TRUSTED_DOCUMENTS`.

A request may then send `{"documentId": "sha256:<hex>", "variables": …}`
instead of the text. In production, with a manifest set, only its documents
run: a request whose text is not in it is refused before anything executes.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from portal.settings import SettingsError

DOCUMENT_ID = re.compile(r"sha256:[0-9a-f]{64}")
# GraphQL Code Generator's client preset writes bare hex keys; they are sha256 too.
BARE_SHA256 = re.compile(r"[0-9a-f]{64}")


def document_id(document: str) -> str:
    return "sha256:" + hashlib.sha256(document.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class TrustedDocuments:
    by_id: dict[str, str] = field(default_factory=dict)
    # Whether nothing but these documents may run (production with a manifest).
    enforced: bool = False

    def find(self, requested_id: Any) -> str | None:
        if not isinstance(requested_id, str):
            return None
        return self.by_id.get(requested_id)

    def trusts(self, text: str) -> bool:
        return document_id(text) in self.by_id


def load(path: Path | None, enforced: bool) -> TrustedDocuments:
    """The manifest at `path`, every key checked against its document's hash."""
    if path is None:
        return TrustedDocuments()
    where = f"PORTAL_TRUSTED_DOCUMENTS ({path})"
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except OSError as problem:
        raise SettingsError(f"{where} cannot be read: {problem.strerror}") from None
    except (ValueError, UnicodeDecodeError):
        raise SettingsError(f"{where} is not JSON") from None
    if not isinstance(manifest, dict):
        raise SettingsError(f'{where} must be a JSON object {{"sha256:<hex>": "<document>"}}')
    by_id = {}
    for key, document in manifest.items():
        name = f"sha256:{key}" if BARE_SHA256.fullmatch(key) else key
        if not DOCUMENT_ID.fullmatch(name) or not isinstance(document, str):
            raise SettingsError(f'{where}: {key!r} is not "sha256:<64 hex digits>": "<document>"')
        if document_id(document) != name:
            raise SettingsError(f"{where}: {key!r} is not the SHA-256 of its document")
        by_id[name] = document
    return TrustedDocuments(by_id, enforced=enforced)


def with_web_app(operators: TrustedDocuments, web_manifest: Path) -> TrustedDocuments:
    """The operator's documents and the web app's own (always trusted, so its
    pages work with no setting, and in production beside any manifest)."""
    web = load(web_manifest, enforced=False)
    return TrustedDocuments({**web.by_id, **operators.by_id}, enforced=operators.enforced)


def manifest(documents: list[str]) -> dict[str, str]:
    """The manifest of these documents (`portal trusted-documents`)."""
    return {document_id(text): text for text in documents}
