"""Shared fixtures: paths of the bundled sample data (never ../shared)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("GEOALIGN_PROGRESS", "off")

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "sample_data"


@pytest.fixture(scope="session")
def austin() -> dict[str, Path]:
    d = SAMPLE / "austin_inria"
    return {"image": d / "austin1_crop_nw_rgb.tif", "buildings": d / "austin1_crop_nw_buildings.geojson"}


@pytest.fixture(scope="session")
def kampala() -> dict[str, Path]:
    d = SAMPLE / "kampala_oam_osm"
    return {"image": d / "kampala_z21_suburb_rgb.tif", "buildings": d / "labels_osm.geojson"}


@pytest.fixture(scope="session")
def crop_raster():
    """``crop(src_path, window, dst_path, untiled=False)`` writes a window of a raster as a
    GeoTIFF of its own and returns (bounds, pixel data, profile)."""
    import rasterio
    from rasterio.windows import bounds as window_bounds

    def crop(src_path, window, dst_path, *, untiled: bool = False):
        with rasterio.open(src_path) as src:
            profile = {**src.profile, "width": int(window.width), "height": int(window.height),
                       "transform": src.window_transform(window)}
            if untiled:
                profile.pop("blockxsize", None), profile.pop("blockysize", None)
                profile["tiled"] = False
            data = src.read(window=window)
            bounds = window_bounds(window, src.transform)
        with rasterio.open(dst_path, "w", **profile) as dst:
            dst.write(data)
        return bounds, data, profile

    return crop


@pytest.fixture
def align_austin(austin):
    """``align_austin(out, *options)``: ``geoalign -q align`` of the Austin sample with ``options``;
    returns its summary line. Its labels sit on the roofs: every building is kept and moves little."""
    import geopandas as gpd
    import numpy as np
    import shapely
    from click.testing import CliRunner

    from cli.main import main

    def run(out: Path, *options: str) -> str:
        res = CliRunner().invoke(main, ["-q", "align", str(austin["image"]), str(austin["buildings"]), "-o",
                                        str(out), *options], catch_exceptions=False)
        assert res.exit_code == 0, res.output
        aligned = gpd.read_file(out / "aligned.gpkg")
        source = gpd.read_file(austin["buildings"]).to_crs(aligned.crs)
        moved = [shapely.hausdorff_distance(a, s) for a, s in zip(aligned.geometry, source.geometry)]
        assert len(aligned) == len(source) and np.median(moved) < 3.0
        return res.output

    return run
