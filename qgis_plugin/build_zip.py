"""Build the installable plugin zip: one top-level folder ``geoalign_qgis/``, no caches.

``python3 qgis_plugin/build_zip.py [DIST_DIR]`` writes DIST_DIR/geoalign_qgis-VERSION.zip
(default dist/), VERSION from metadata.txt; standard library only, same bytes for the same tree.
"""

from __future__ import annotations

import configparser
import sys
import zipfile
from pathlib import Path

PLUGIN = Path(__file__).resolve().parent / "geoalign_qgis"
SKIP_DIRS = {"__pycache__"}
SKIP_SUFFIXES = {".pyc", ".pyo"}


def plugin_version() -> str:
    meta = configparser.ConfigParser()
    meta.read(PLUGIN / "metadata.txt", encoding="utf-8")
    return meta["general"]["version"]


def build(dist_dir: Path) -> Path:
    dist_dir.mkdir(parents=True, exist_ok=True)
    target = dist_dir / f"geoalign_qgis-{plugin_version()}.zip"
    tmp = target.with_suffix(".zip.part")
    files = sorted(p for p in PLUGIN.rglob("*")
                   if p.is_file() and not SKIP_DIRS & set(p.relative_to(PLUGIN).parts)
                   and p.suffix not in SKIP_SUFFIXES)
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in files:
            info = zipfile.ZipInfo(f"{PLUGIN.name}/{path.relative_to(PLUGIN).as_posix()}", (2024, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, path.read_bytes())
    tmp.replace(target)
    return target


if __name__ == "__main__":
    print(build(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("dist")))
