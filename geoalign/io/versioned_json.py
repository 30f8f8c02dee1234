"""Reading the small versioned JSON files that describe a folder (dataset manifest, model config).

One place for the checks every such file needs: present, parseable, an object, the expected
``kind`` and ``format_version``; each failure raises the caller's error type with a message that
says what to do.
"""

from __future__ import annotations

import json
from pathlib import Path


def read_versioned_json(path: str | Path, *, version: int, error: type[Exception], missing: str,
                        corrupt: str, mismatch: str, kind: str | None = None) -> dict:
    """The JSON object at ``path``. Messages: ``missing`` (file absent), ``corrupt`` (not JSON),
    ``mismatch`` (wrong version; ``{found}`` and ``{expected}`` are filled in). A file that is not an
    object, or not of ``kind``, is reported as such."""
    path = Path(path)
    if not path.exists():
        raise error(missing)
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise error(f"{corrupt} ({err})") from None
    if not isinstance(data, dict) or (kind is not None and data.get("kind") != kind):
        raise error(f"{path}: not a {kind or 'JSON object'} file.")
    if data.get("format_version") != version:
        found = str(data.get("format_version"))
        raise error(mismatch.replace("{found}", found).replace("{expected}", str(version)))
    return data
