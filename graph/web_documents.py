"""The web app's GraphQL documents and the files made from them.

Every operation the web app (portal/web/) sends is one file,
`portal/web/documents/<OperationName>.graphql`. From them `make web-documents`
(`python -m graph.web_documents`) writes, both committed:

- `portal/web/trusted-documents.json`, the manifest the service always
  trusts beside the operator's `PORTAL_TRUSTED_DOCUMENTS` (graph/view.py);
- `portal/web/js/documents.js`, each operation's `documentId` by name, which
  `api.js` sends instead of the text.

tests/test_web_documents.py fails while either file is stale.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from graph.trusted import document_id

WEB_DIRECTORY = Path(__file__).resolve().parent.parent / "portal" / "web"
DOCUMENTS_DIRECTORY = WEB_DIRECTORY / "documents"
MANIFEST = WEB_DIRECTORY / "trusted-documents.json"
IDS_MODULE = WEB_DIRECTORY / "js" / "documents.js"


def documents() -> dict[str, str]:
    """Each document's text by its operation name (its file's name)."""
    return {
        path.stem: path.read_text(encoding="utf-8")
        for path in sorted(DOCUMENTS_DIRECTORY.glob("*.graphql"))
    }


def generated_files() -> dict[Path, str]:
    """What the two generated files must hold."""
    texts = documents()
    manifest = {document_id(text): text for text in texts.values()}
    ids = "\n".join(f'  {name}: "{document_id(text)}",' for name, text in texts.items())
    module = (
        "// Written by `make web-documents` from portal/web/documents/*.graphql: do not edit.\n"
        "// Each operation's documentId (its SHA-256), which api.js sends instead of its text.\n"
        f"export const documentIds = Object.freeze({{\n{ids}\n}});\n"
    )
    return {
        MANIFEST: json.dumps(manifest, indent=2, ensure_ascii=False, sort_keys=True) + "\n",
        IDS_MODULE: module,
    }


def main() -> None:
    for path, content in generated_files().items():
        path.write_text(content, encoding="utf-8")
        print(f"wrote {path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path}")


if __name__ == "__main__":
    main()
    sys.exit(0)
