"""The external validation sources: real, attributed, never trained on, and held out by the
accuracy benchmark whole."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest
import rasterio
import shapely

from benchmarks.accuracy import EXTERNAL_SOURCES, EXTERNAL_SUFFIX, held_out_regions
from geoalign.grid import PixelGrid, reproject_to
from geoalign.io.vectors import read_buildings

ROOT = Path(__file__).resolve().parents[2]
TRAINING_ARGS = ROOT / "sample_data/training/default_sources.txt"


def test_no_external_source_is_trained_on():
    trained = {(ROOT / a).resolve() for a in shlex.split(TRAINING_ARGS.read_text()) if not a.startswith("--")}
    assert len(trained) == 2 * 21  # 21 sources (20 train, 1 val), image and labels each
    external = {p.resolve() for pair in EXTERNAL_SOURCES.values() for p in pair}
    assert len(external) == 2 * len(EXTERNAL_SOURCES) == 10
    assert not trained & external


@pytest.mark.parametrize("name", sorted(EXTERNAL_SOURCES))
def test_external_source_is_attributed_and_holds_whole_buildings(name):
    image, buildings = EXTERNAL_SOURCES[name]
    source_md = (image.parent / "SOURCE.md").read_text()
    assert "CC BY-SA 4.0" in source_md or "Etalab Open Licence 2.0" in source_md
    with rasterio.open(image) as src:
        assert src.crs is not None and src.count >= 3
        grid = PixelGrid(src.transform, src.width, src.height, src.crs)
    px = grid.to_pixels(reproject_to(read_buildings(buildings), grid.crs).geometry.values)
    inside = shapely.within(px, shapely.box(0, 0, grid.width, grid.height))
    assert inside.sum() >= 3, f"{name}: {inside.sum()} buildings wholly inside"


def test_benchmark_holds_external_sources_out_after_the_card_regions():
    regions, origin = held_out_regions()
    names = [r.name for r in regions]
    external = [n for n in names if n.endswith(EXTERNAL_SUFFIX)]
    assert external == [n + EXTERNAL_SUFFIX for n in EXTERNAL_SOURCES]
    assert names[-len(external):] == external  # the card's regions keep their seeds
    assert all(r.east_fraction is None for r in regions if r.name in external)
    assert "5 external sources" in origin
