"""What the list commands print with ``--json``: one JSON document on stdout.

The documents are made by ``ministry.core.documents`` (the keys of the management
API), so a script reads the same keys from the command and from the server.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["print_json"]


def print_json(document: Any) -> None:
    """Print ``document`` as indented JSON, non-ASCII text as it is."""
    print(json.dumps(document, indent=2, ensure_ascii=False))
