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
