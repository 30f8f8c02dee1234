"""One aligner: ``geoalign align``, the realignment rounds and the label pre-registration all move
vertices through :func:`geoalign.inference.layer.align_layer`, and the packages import in the
order the data flows."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import shapely

from geoalign.align import align_raster
from geoalign.baselines import classical_predictor
from geoalign.dataset.config import SourcePair
from geoalign.dataset.preregister import preregister_sources
from geoalign.io.raster import RasterReader
from geoalign.io.vectors import read_buildings, read_vectors, write_vectors
from geoalign.train.realign import align_source

PACKAGE = Path(__file__).resolve().parents[2] / "geoalign"


def _imports(package: str) -> set[tuple[str, str]]:
    """(module file, imported geoalign module) for every import in ``geoalign/<package>``,
    those inside functions included."""
    found = set()
    for path in (PACKAGE / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add((path.name, node.module))
            elif isinstance(node, ast.Import):
                found.update((path.name, alias.name) for alias in node.names)
    return {(f, m) for f, m in found if m.startswith("geoalign.")}


def _offending(package: str, above: tuple[str, ...]) -> set[tuple[str, str]]:
    return {(f, m) for f, m in _imports(package) if m.split(".")[1] in above}


def test_packages_import_only_what_comes_before_them_on_the_datas_path():
    assert _offending("dataset", ("align", "train", "model")) == set()
    assert _offending("inference", ("align", "train", "dataset")) == set()
    assert _offending("train", ("align",)) == set()
    assert _offending("baselines", ("align", "train", "dataset", "model")) == set()


def test_the_import_check_sees_imports_inside_functions(tmp_path, monkeypatch):
    """The check above sees an import inside a function, not only at the top of a module."""
    pkg = tmp_path / "geoalign" / "dataset"
    pkg.mkdir(parents=True)
    (pkg / "x.py").write_text("def f():\n    from geoalign.align import align_raster\n")
    monkeypatch.setattr(__import__(__name__, fromlist=["PACKAGE"]), "PACKAGE", tmp_path / "geoalign")
    assert _offending("dataset", ("align",)) == {("x.py", "geoalign.align")}


def test_align_realign_and_preregister_move_the_same_vertices(austin, tmp_path):
    """The global translation of a layer shifted by (5, 4) px, through each command's path."""
    with RasterReader(austin["image"]) as r:
        px_m = abs(r.transform.a)
    truth = read_buildings(austin["buildings"])
    shifted = truth.copy()
    shifted["geometry"] = shapely.transform(truth.geometry.values, lambda xy: xy + np.array([5 * px_m, 4 * px_m]))
    src = write_vectors(shifted, tmp_path / "shifted.gpkg")

    res = align_raster(austin["image"], src, tmp_path / "align", classical_predictor("global", gsd_m=0.3),
                       show_progress=False)
    by_align = shapely.get_coordinates(read_vectors(res.paths["gpkg"]).geometry.values)
    realigned, shift_px = align_source(classical_predictor("global", gsd_m=0.3), austin["image"], src, 0.3,
                                       work_dir=tmp_path)
    by_realign = shapely.get_coordinates(realigned.geometry.values)
    [pre] = preregister_sources([SourcePair(austin["image"], src, "train")], tmp_path / "pre", method="global",
                                gsd_m=0.3, progress=False)
    by_preregister = shapely.get_coordinates(read_vectors(pre.buildings).geometry.values)

    moved = np.hypot(*(by_align - shapely.get_coordinates(shifted.geometry.values)).T) / px_m
    assert np.median(moved) > 5.0  # the layer did move back by about hypot(5, 4) = 6.4 px
    np.testing.assert_array_equal(by_realign, by_align)
    np.testing.assert_array_equal(by_preregister, by_align)
    np.testing.assert_allclose(shift_px, moved, atol=1e-6)  # Austin's pixels are 0.3 m
