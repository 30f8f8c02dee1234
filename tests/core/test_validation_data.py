"""The external validation sources: real, attributed, never trained on, and held out by the
accuracy benchmark whole."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest
import rasterio

from benchmarks.accuracy import EXTERNAL_SOURCES, EXTERNAL_SUFFIX, external_regions, held_out_regions, make_strip

ROOT = Path(__file__).resolve().parents[2]
TRAINING_ARGS = ROOT / "sample_data/training/default_sources.txt"


def test_no_external_source_is_trained_on():
    trained = {(ROOT / a).resolve() for a in shlex.split(TRAINING_ARGS.read_text()) if not a.startswith("--")}
    assert len(trained) == 2 * 21  # 21 sources (20 train, 1 val), image and labels each
    external = {p.resolve() for pair in EXTERNAL_SOURCES.values() for p in pair}
    assert len(external) == 2 * len(EXTERNAL_SOURCES) == 10
    assert not trained & external


@pytest.mark.parametrize("region", external_regions(), ids=lambda r: r.name)
def test_external_source_is_attributed_and_holds_whole_buildings(region, tmp_path):
    source_md = (region.image.parent / "SOURCE.md").read_text()
    assert "CC BY-SA 4.0" in source_md or "Etalab Open Licence 2.0" in source_md
    with rasterio.open(region.image) as src:
        assert src.crs is not None and src.count >= 3
    _, _, truth, gsd_m, _ = make_strip(tmp_path, region)  # the strip the benchmark aligns
    assert gsd_m == pytest.approx(0.3, abs=0.03)
    assert len(truth) >= 3, f"{region.name}: {len(truth)} buildings wholly inside"


def test_benchmark_holds_external_sources_out_after_the_card_regions():
    regions, origin = held_out_regions()
    names = [r.name for r in regions]
    external = [n for n in names if n.endswith(EXTERNAL_SUFFIX)]
    assert external == [n + EXTERNAL_SUFFIX for n in EXTERNAL_SOURCES]
    assert names[-len(external):] == external  # the card's regions keep their seeds
    assert all(r.east_fraction is None for r in regions if r.name in external)  # used whole
    assert "5 external sources" in origin
