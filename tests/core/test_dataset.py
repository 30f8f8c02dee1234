"""Multiscale pairs: ranges per scale, determinism, region holdout, torch Dataset, bounded memory."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from geoalign.dataset import DatasetConfig, PairDataset, SourcePair, build_dataset
from geoalign.dataset.preview import write_preview
from geoalign.deform import warp_raster


@pytest.fixture(scope="module")
def austin_ds(tmp_path_factory, austin):
    out = tmp_path_factory.mktemp("ds") / "austin"
    config = DatasetConfig(scales=(2, 1, 0), patch_px=64, holdout_fraction=0.3, seed=11)
    summary = build_dataset([SourcePair(austin["image"], austin["buildings"])], out, config, progress=False)
    return out, summary


def test_manifest_counts_and_ranges(austin_ds):
    out, summary = austin_ds
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["config"]["scales"] == [2, 1, 0]
    assert manifest["gsd_m"] == pytest.approx(0.3, abs=1e-6)
    assert manifest["sources"][0]["crs"] == "EPSG:26914"
    counts = manifest["counts"]
    amps: list[float] = []
    assert counts["0"]["train"] > 60 and counts["0"]["val"] > 10
    assert counts["1"]["train"] > 10
    for scale in (2, 1, 0):
        for split in ("train", "val"):
            ds = PairDataset(out, scale, split)
            assert len(ds) == counts[str(scale)].get(split, 0)
            if len(ds) == 0:
                continue
            for i in range(len(ds)):
                f = ds[i]["field"].numpy()
                assert np.hypot(f[0], f[1]).max() <= 2.0 + 1e-4  # 2^(s+1) full-res px = 2 px at scale s
                amps.append(float(ds[i]["meta"][5]))
    # Each pair draws its own maximum in [0.25, 1] × 2 px: targets are not mostly near zero.
    assert min(amps) >= 0.5 - 1e-6 and np.median(amps) > 1.0


def test_holdout_regions_do_not_overlap(austin_ds):
    out, _ = austin_ds
    for scale in (1, 0):
        train = PairDataset(out, scale, "train")
        val = PairDataset(out, scale, "val")
        train_right = max(float(train[i]["meta"][1] + train[i]["meta"][3]) for i in range(len(train)))
        val_left = min(float(val[i]["meta"][1]) for i in range(len(val)))
        assert train_right <= 700 + 1e-6 <= val_left + 1e-6  # east 30 % of 1000 px held out


def test_pairs_are_consistent_with_the_field(austin_ds):
    """Warping the true map by the stored field reproduces the stored misaligned map."""
    out, _ = austin_ds
    ds = PairDataset(out, 0, "train")
    ious = []
    for i in range(0, len(ds), 5):
        item = ds[i]
        truth = item["map_true"][0].numpy()
        warped = warp_raster(truth, item["field"].numpy(), order=0) > 0.5
        mis = item["map"][0].numpy() > 0.5
        inner = (slice(3, -3), slice(3, -3))  # the warp of the crop lacks the margin's buildings
        union = (warped | mis)[inner].sum()
        if union > 50:
            ious.append((warped & mis)[inner].sum() / union)
    assert len(ious) > 5 and np.median(ious) > 0.9


def test_build_is_deterministic_for_a_seed(tmp_path, austin):
    config = DatasetConfig(scales=(1,), patch_px=64, stride_fraction=1.0, seed=5)
    src = [SourcePair(austin["image"], austin["buildings"])]
    build_dataset(src, tmp_path / "a", config, progress=False)
    build_dataset(src, tmp_path / "b", config, progress=False)
    build_dataset(src, tmp_path / "c", DatasetConfig(scales=(1,), patch_px=64, stride_fraction=1.0, seed=6), progress=False)
    a, b, c = (PairDataset(tmp_path / n, 1) for n in "abc")
    assert len(a) == len(b) == len(c) > 4
    assert all(torch.equal(a[i]["field"], b[i]["field"]) and torch.equal(a[i]["map"], b[i]["map"])
               for i in range(len(a)))
    assert not torch.equal(a[0]["field"], c[0]["field"])


def test_torch_dataset_in_a_dataloader(austin_ds):
    out, _ = austin_ds
    loader = torch.utils.data.DataLoader(PairDataset(out, 0), batch_size=8, shuffle=True)
    batch = next(iter(loader))
    assert batch["image"].shape == (8, 3, 64, 64) and batch["image"].dtype == torch.float32
    assert batch["map"].shape == (8, 3, 64, 64) and batch["field"].shape == (8, 2, 64, 64)
    assert 0 <= float(batch["image"].min()) and float(batch["image"].max()) <= 1
    assert float(batch["map_true"][:, 0].mean()) > 0.01  # patches hold buildings


def test_preview_png(austin_ds, tmp_path):
    out, _ = austin_ds
    png = write_preview(out, tmp_path / "p.png", per_scale=3)
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000


def test_big_raster_is_read_window_by_window(tmp_path, austin):
    """A 20000×20000 raster (4.8 GB as float32 RGB) builds within a few hundred MB."""
    script = textwrap.dedent(f"""
        import resource, numpy as np, rasterio
        from rasterio.windows import Window
        from geoalign.dataset import DatasetConfig, SourcePair, build_dataset
        with rasterio.open({str(austin["image"])!r}) as src:
            prof, data = src.profile, src.read()
        prof.update(width=20000, height=20000, tiled=True, blockxsize=512, blockysize=512,
                    compress="deflate", sparse_ok=True)
        big = {str(tmp_path / "big.tif")!r}
        with rasterio.open(big, "w", **prof) as dst:
            dst.write(data, window=Window(0, 0, 1000, 1000))
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        s = build_dataset([SourcePair(big, {str(austin["buildings"])!r})], {str(tmp_path / "ds")!r},
                          DatasetConfig(scales=(3, 0), patch_px=64, holdout_fraction=0.0), progress=False)
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(s.total, (after - before) / 1024)
    """)
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    total, growth_mb = res.stdout.split()
    assert int(total) > 50
    assert float(growth_mb) < 400, growth_mb


def test_truncated_manifest_is_a_clear_error(austin_ds, tmp_path):
    import shutil

    from geoalign.errors import InputFileError

    out, _ = austin_ds
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    text = (copy / "manifest.json").read_text()
    (copy / "manifest.json").write_text(text[: len(text) // 2])
    with pytest.raises(InputFileError, match="corrupt dataset manifest"):
        PairDataset(copy, 0)


def test_preregistration_removes_a_source_wide_offset(tmp_path, austin):
    """A whole label layer shifted by (+5, -4) px is moved back before the pairs are cut."""
    import hashlib

    import shapely
    from click.testing import CliRunner

    from cli.main import main
    from geoalign.io.raster import RasterReader
    from geoalign.io.vectors import read_buildings, write_vectors

    with RasterReader(austin["image"]) as r:
        px = abs(r.transform.a)
    truth = read_buildings(austin["buildings"])
    truth["bid"] = range(len(truth))
    shifted = truth.copy()
    shifted["geometry"] = shapely.transform(truth.geometry.values, lambda xy: xy + np.array([5 * px, 4 * px]))
    src = write_vectors(shifted, tmp_path / "shifted.gpkg")
    digest = hashlib.sha256(src.read_bytes()).hexdigest()
    out = tmp_path / "ds"
    res = CliRunner().invoke(main, ["-q", "dataset", "build", "--source", str(austin["image"]), str(src),
                                    "-o", str(out), "--scales", "2", "--patch-size", "64", "--preregister", "global"])
    assert res.exit_code == 0, res.output
    assert hashlib.sha256(src.read_bytes()).hexdigest() == digest  # the input is untouched
    prereg = tmp_path / "ds.preregistered"
    summary = json.loads((prereg / "preregister.json").read_text())
    moved = read_buildings(summary["sources"][0]["preregistered"])
    assert list(moved["bid"]) == list(truth["bid"])
    err_before = np.hypot(*(shapely.get_coordinates(shifted.geometry.values) - shapely.get_coordinates(truth.geometry.values)).T) / px
    err_after = np.hypot(*(shapely.get_coordinates(moved.geometry.values) - shapely.get_coordinates(truth.geometry.values)).T) / px
    assert np.median(err_before) == pytest.approx(np.hypot(5, 4), abs=1e-6)
    assert np.median(err_after) < 1.5  # back to within the labels' own ~1 px offset from the roofs
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["sources"][0]["buildings_path"] == summary["sources"][0]["preregistered"]
