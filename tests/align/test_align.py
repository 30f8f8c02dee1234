"""``align`` end to end on the Austin sample: outputs, order, attributes, CRS, tiling, accuracy."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import rasterio
import shapely
from click.testing import CliRunner
from scipy import ndimage

from geoalign.align import align_raster
from geoalign.inference import ComposedPredictor, TileInputs, WorkGrid, predict_tiled
from geoalign.baselines import LocalOffsetPredictor
from geoalign.errors import OptionError
from geoalign.io.raster import RasterReader
from geoalign.io.vectors import read_vectors
from geoalign.rasterize import MAP_CHANNELS

from .conftest import median_error, smooth_misalignment, translate_geoms

AMPLITUDE_PX = 8.0


@pytest.fixture(scope="module")
def misaligned(austin, austin_px, tmp_path_factory):
    """Austin buildings misaligned by a known smooth field, with attributes and an outside feature."""
    image, _, grid, geoms = austin_px
    mis, _ = smooth_misalignment(geoms, image.shape[1:], AMPLITUDE_PX, seed=11)
    crs_geoms = list(grid.to_crs_coords(mis))
    outside = shapely.box(620000, 3340000, 620020, 3340020)  # km away from the raster
    crs_geoms.insert(3, outside)
    n = len(crs_geoms)
    gdf = gpd.GeoDataFrame(
        {"fid_src": np.arange(n) * 10, "name": [f"b{i}" for i in range(n)], "height_m": np.linspace(3, 30, n)},
        geometry=crs_geoms, crs=grid.crs,
    )
    d = tmp_path_factory.mktemp("misaligned")
    native, wgs84 = d / "native.geojson", d / "wgs84.gpkg"
    gdf.to_file(native, driver="GeoJSON")
    gdf.to_crs(4326).to_file(wgs84, driver="GPKG")
    truth = list(geoms)
    truth.insert(3, None)
    return {"native": native, "wgs84": wgs84, "truth_px": truth, "grid": grid, "dir": d, "n": n}


@pytest.fixture(scope="module")
def aligned_native(austin, misaligned):
    return align_raster(austin["image"], misaligned["native"], misaligned["dir"] / "out_native",
                        LocalOffsetPredictor(), tile_px=512, show_progress=False)


@pytest.fixture(scope="module")
def aligned_wgs84(austin, misaligned):
    return align_raster(austin["image"], misaligned["wgs84"], misaligned["dir"] / "out_wgs84",
                        LocalOffsetPredictor(), tile_px=512, show_progress=False)


def test_outputs_exist_and_field_is_on_the_image_grid(austin, aligned_native):
    out = aligned_native.out_dir
    for name in ("aligned.geojson", "aligned.gpkg", "displacement.tif", "overlay.png"):
        assert (out / name).stat().st_size > 0
    assert (out / "overlay.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with rasterio.open(out / "displacement.tif") as f, rasterio.open(austin["image"]) as img:
        assert f.count == 2 and f.dtypes == ("float32", "float32")
        assert (f.width, f.height, f.transform, f.crs) == (img.width, img.height, img.transform, img.crs)
        assert f.profile.get("tiled") and f.profile.get("compress")
    assert not list(out.glob(".*part*"))  # no temporary left behind


def test_order_attributes_vertex_counts_kept_and_outside_flagged(misaligned, aligned_native):
    src = read_vectors(misaligned["native"])
    for path in ("aligned.geojson", "aligned.gpkg"):
        out = read_vectors(aligned_native.out_dir / path)
        assert len(out) == len(src) == misaligned["n"]
        for col in ("fid_src", "name", "height_m"):
            assert list(out[col]) == list(src[col])
        assert list(shapely.get_num_coordinates(out.geometry.values)) == \
            list(shapely.get_num_coordinates(src.geometry.values))
        assert out.crs == src.crs
        assert list(out["outside_image"]) == [i == 3 for i in range(len(src))]
        assert out.geometry.values[3].equals_exact(src.geometry.values[3], 0.0)
        assert out["shift_m"].iloc[3] == 0.0
        moved = ~out["outside_image"].to_numpy()
        assert (out["shift_m"][moved] > 0).mean() > 0.9
        assert out["shift_m"].max() < AMPLITUDE_PX * 0.3 * 2


def test_vertices_move_by_the_written_field_and_errors_shrink(misaligned, aligned_native):
    grid = misaligned["grid"]
    src = read_vectors(misaligned["native"])
    out = read_vectors(aligned_native.out_dir / "aligned.geojson")
    idx = [i for i in range(len(src)) if i != 3]
    before = grid.to_pixels(np.asarray(src.geometry.values, dtype=object)[idx])
    after = grid.to_pixels(np.asarray(out.geometry.values, dtype=object)[idx])
    truth = np.array(misaligned["truth_px"], dtype=object)[idx]
    t = shapely.get_coordinates(truth)
    b, a = shapely.get_coordinates(before), shapely.get_coordinates(after)
    eb, ea = median_error(b, t), median_error(a, t)
    assert eb > 3.0 and ea < 0.45 * eb, (eb, ea)
    # The move of each vertex is the field sampled bilinearly there (pixel-corner coordinates).
    with rasterio.open(aligned_native.out_dir / "displacement.tif") as f:
        field = f.read().astype(np.float64)
    k = 100
    x, y = b[k] - 0.5
    expect = [ndimage.map_coordinates(field[c], [[y], [x]], order=1)[0] for c in range(2)]
    b_crs = shapely.get_coordinates(np.asarray(src.geometry.values, dtype=object)[idx])
    a_crs = shapely.get_coordinates(np.asarray(out.geometry.values, dtype=object)[idx])
    assert np.allclose(a_crs[k] - b_crs[k], expect, atol=1e-4)
    shift = np.hypot(*(a_crs - b_crs).T)
    first = shapely.get_num_coordinates(src.geometry.values[0])
    assert out["shift_m"].iloc[0] == pytest.approx(shift[:first].mean(), rel=1e-3)


def test_crs_mismatch_is_reprojected(misaligned, aligned_native, aligned_wgs84):
    out84 = read_vectors(aligned_wgs84.out_dir / "aligned.gpkg")
    assert out84.crs.to_epsg() == 4326
    native = read_vectors(aligned_native.out_dir / "aligned.geojson")
    back = out84.to_crs(native.crs)
    moved = ~native["outside_image"].to_numpy()
    a = shapely.get_coordinates(np.asarray(back.geometry.values, dtype=object)[moved])
    b = shapely.get_coordinates(np.asarray(native.geometry.values, dtype=object)[moved])
    assert np.median(np.hypot(*(a - b).T)) < 0.05  # metres: the same alignment
    assert list(out84["outside_image"]) == list(native["outside_image"])


class _SmoothContentPredictor:
    """A predictor whose output is a smooth function of the image content around each pixel."""

    name = "smooth-content"
    gsd_m = None
    context_px = 16
    channels = MAP_CHANNELS

    def predict(self, image, valid, map_):
        g = ndimage.gaussian_filter(image.mean(axis=0), 3.0, truncate=4.0)
        return np.stack([8 * g - 4, 4 - 8 * g]).astype(np.float32)


def _run_tiled(reader, geoms, predictor, tile_px):
    grid = WorkGrid.for_predictor(reader, None)
    out = np.zeros((2, grid.height, grid.width), np.float32)

    def sink(r0, strip):
        out[:, r0:r0 + strip.shape[1]] = strip

    predict_tiled(TileInputs(reader, grid, geoms), predictor, tile_px=tile_px, blend_px=32,
                  sink=sink, show_progress=False)
    return out


def test_tiled_blended_equals_untiled_no_seams(austin):
    geoms = np.array([shapely.box(-100, -100, 1100, 1100)], dtype=object)  # every tile has "buildings"
    with RasterReader(austin["image"]) as reader:
        whole = _run_tiled(reader, geoms, _SmoothContentPredictor(), 1024)
        tiled = _run_tiled(reader, geoms, _SmoothContentPredictor(), 200)
    assert np.abs(tiled - whole).max() < 1e-3


def test_global_shift_through_the_tiler_counts_buildings_at_the_raster_border(austin, austin_px):
    """The raster-wide pass counts each tile's footprint, which reaches the raster's edge: buildings
    within the blend width of the border are evidence too."""
    from geoalign.baselines import GlobalShiftPredictor

    _, _, _, geoms = austin_px
    x0, y0, x1, y1 = np.array([g.bounds for g in geoms]).T
    near = (np.minimum(x1, y1) < 56) | (np.maximum(x0, y0) > 944)  # wholly within 56 px of an edge
    border = np.asarray(geoms, dtype=object)[near]
    assert 5 <= len(border) < len(geoms)
    mis = translate_geoms(border, -6.0, 4.0)
    with RasterReader(austin["image"]) as reader:
        field = _run_tiled(reader, mis, GlobalShiftPredictor(), 512)
    assert np.hypot(*(field[:, 500, 500] - (6.0, -4.0))) < 1.5  # the labels sit ~0.7 px off the roofs


def test_tiles_without_buildings_get_zero_field(austin, austin_px, tmp_path):
    _, _, grid, geoms = austin_px
    corner = [g for g in geoms if g.bounds[2] < 300 and g.bounds[3] < 300]
    assert corner
    path = tmp_path / "corner.geojson"
    gpd.GeoDataFrame({"i": range(len(corner))}, geometry=list(grid.to_crs_coords(np.array(corner, dtype=object))),
                     crs=grid.crs).to_file(path, driver="GeoJSON")
    res = align_raster(austin["image"], path, tmp_path / "out", _SmoothContentPredictor(), tile_px=256,
                       show_progress=False)
    with rasterio.open(res.paths["displacement"]) as f:
        field = f.read()
    assert res.tiles == 16 and res.tiles_with_buildings < 16
    assert not np.any(field[:, 600:, :]) and not np.any(field[:, :, 600:])
    assert np.any(field[:, :200, :200])


class _ConstantPredictor:
    name = "constant"
    channels = MAP_CHANNELS

    def __init__(self, dx, dy, gsd_m=None):
        self.dx, self.dy, self.gsd_m, self.context_px = dx, dy, gsd_m, 0

    def predict(self, image, valid, map_):
        f = np.empty((2, *image.shape[1:]), np.float32)
        f[0], f[1] = self.dx, self.dy
        return f


def test_predictor_gsd_resampling_maps_the_field_back(austin, misaligned, tmp_path):
    # Works at 0.6 m (2× the image's 0.3 m): 1 working px = 2 image px = 0.6 m.
    res = align_raster(austin["image"], misaligned["native"], tmp_path, _ConstantPredictor(1.0, -2.0, 0.6),
                       show_progress=False)
    with rasterio.open(res.paths["displacement"]) as f:
        field = f.read()
    assert np.allclose(field[0], 0.6, atol=1e-3) and np.allclose(field[1], 1.2, atol=1e-3)  # north positive


def test_composed_predictors_add_constant_fields(austin_px):
    image, valid, _, _ = austin_px
    m = np.zeros((3, 64, 64), np.float32)
    m[0, 20:40, 20:40] = 1
    combo = ComposedPredictor([_ConstantPredictor(2.0, 1.0), _ConstantPredictor(-0.5, 3.0)])
    f = combo.predict(image[:, :64, :64], valid[:64, :64], m)
    assert np.allclose(f[0], 1.5) and np.allclose(f[1], 4.0)


class _ZeroStage:
    """A later stage that asks for context and moves nothing."""

    name = "zero"
    gsd_m = None
    context_px = 74
    channels = MAP_CHANNELS

    def __init__(self):
        self.shapes = []

    def predict(self, image, valid, map_):
        self.shapes.append(image.shape[1:])
        return np.zeros((2, *image.shape[1:]), np.float32)


def test_a_composed_stage_sees_the_tiles_it_would_see_alone(austin, austin_px):
    """The local-offset search lays its windows from the tile's corner: the context a later stage
    adds around the tile must not change its answer."""
    _, _, _, geoms = austin_px
    mis, _ = smooth_misalignment(geoms, (1000, 1000), 16.0, seed=4)
    with RasterReader(austin["image"]) as reader:
        alone = _run_tiled(reader, mis, LocalOffsetPredictor(), 512)
        local, later = LocalOffsetPredictor(), _ZeroStage()
        first = _run_tiled(reader, mis, ComposedPredictor([local, later]), 512)
    assert np.abs(alone).max() > 4.0  # the search did move things
    assert np.abs(first - alone).max() < 1e-4
    # The later stage gets the footprint plus its own context, not the first stage's too:
    # 512-px cores, 32-px blend on the inner side of the first tile → 544 + 2 × 74.
    assert later.shapes[0] == (544 + 2 * 74, 544 + 2 * 74)


def test_moving_the_map_with_a_coarse_inverse_matches_the_exact_warp(austin_px):
    """move_map inverts the field on a 2× coarser grid: on a smooth field the moved map equals the
    exact backward warp of geoalign.deform except on a few edge pixels."""
    from geoalign.inference import move_map
    from geoalign.deform import invert_field, random_smooth_field, warp_raster
    from geoalign.rasterize import rasterize_map

    _, _, _, geoms = austin_px
    map_ = rasterize_map(geoms, (400, 400))
    field = random_smooth_field((400, 400), max_amplitude_px=12.0, correlation_length_px=96.0, rng=3).astype(np.float32)
    exact = (warp_raster(map_, invert_field(field), order=1) >= 0.5).astype(np.float32)
    moved = move_map(map_, field)
    assert moved.shape == map_.shape and set(np.unique(moved)) <= {0.0, 1.0}
    assert np.abs(moved - map_).sum() > 1000  # the map did move
    for c in range(3):
        assert (moved[c] != exact[c]).sum() <= 0.01 * max(1.0, exact[c].sum()), c


def test_cli_align_and_bad_input(austin, misaligned, tmp_path):
    from cli.main import main

    runner = CliRunner()
    r = runner.invoke(main, ["align", str(austin["image"]), str(misaligned["native"]), "-o",
                             str(tmp_path / "o"), "--method", "global"])
    assert r.exit_code == 0, r.output
    assert "aligned" in r.output and "global" in r.output
    assert (tmp_path / "o" / "aligned.gpkg").exists()
    r = runner.invoke(main, ["align", str(austin["image"]), str(tmp_path / "missing.geojson"), "-o",
                             str(tmp_path / "p")])
    assert r.exit_code == 1 and "no such vector file" in r.output and "Traceback" not in r.output
    bad = tmp_path / "bad_model"
    bad.mkdir()
    (bad / "config.json").write_text("{not json")
    (bad / "weights.pt").write_bytes(b"\x00garbage")
    r = runner.invoke(main, ["align", str(austin["image"]), str(misaligned["native"]), "-o",
                             str(tmp_path / "q"), "--model", str(bad)])
    assert r.exit_code == 1 and "Traceback" not in r.output and len(r.output.strip().splitlines()) == 1
    assert not (tmp_path / "q" / "aligned.gpkg").exists()


def test_default_predictor_follows_the_card_else_falls_back_to_classical():
    from geoalign.align import resolve_predictor
    from geoalign.model.card import read_card
    from geoalign.model.predictor import DEFAULT_MODEL_DIR

    predictor, name, note = resolve_predictor(None)
    if read_card(DEFAULT_MODEL_DIR).get("align_pipeline") in ("learned", "local+learned"):
        assert name == read_card(DEFAULT_MODEL_DIR)["align_pipeline"]
    else:
        assert name == "local" and "classical fallback" in note
        assert isinstance(predictor, LocalOffsetPredictor)
    with pytest.raises(OptionError, match="unknown method"):
        resolve_predictor("magic")


HEAVY_LIBRARIES = ("torch", "geopandas", "matplotlib", "skimage")


@pytest.mark.parametrize("start", [
    "from cli.main import main\nfor argv in (['--help'], ['align', '--help'], ['dataset', 'build', '--help']):\n"
    "    try:\n        main(argv)\n    except SystemExit:\n        pass",
    "import geoalign.align, geoalign.baselines, geoalign.inference, geoalign.dataset, geoalign.distributed.worker",
], ids=["cli help", "packages and the Dask worker module"])
def test_start_up_loads_no_heavy_library(start):
    """`geoalign --help` answers in a fraction of a second and a Dask worker starts without
    geopandas or scikit-image: package imports load modules when a name is used
    (:mod:`geoalign.lazy`), torch when a predictor runs."""
    import subprocess
    import sys

    code = f"import sys\n{start}\nprint([m for m in {HEAVY_LIBRARIES!r} if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"


def test_lazy_package_names_are_the_modules_objects():
    import geoalign.baselines as baselines
    import geoalign.inference as inference
    from geoalign.baselines.local_offset import LocalOffsetPredictor
    from geoalign.inference.tiling import predict_tiled

    assert baselines.LocalOffsetPredictor is LocalOffsetPredictor and inference.predict_tiled is predict_tiled
    assert "TVL1Predictor" in dir(baselines) and baselines.tvl1.TVL1Predictor is baselines.TVL1Predictor
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        baselines.nothing


def test_the_per_tile_hook_sees_every_tile_and_its_field_makes_the_blend(austin, austin_px):
    """``on_tile`` gets each tile once with its windows, geotransform, inputs and footprint field;
    blending those fields with the tiles' weights gives what the sink got, and ``predict_tile``
    alone gives the same tile."""
    from geoalign.inference import predict_tile

    _, _, grid_px, geoms = austin_px
    seen = []
    with RasterReader(austin["image"]) as reader:
        grid = WorkGrid.for_predictor(reader, None)
        inputs = TileInputs(reader, grid, geoms)
        out = np.zeros((2, grid.height, grid.width), np.float32)

        def sink(r0, strip):
            out[:, r0:r0 + strip.shape[1]] = strip

        stats = predict_tiled(inputs, _SmoothContentPredictor(), tile_px=300, blend_px=32, sink=sink,
                              show_progress=False, on_tile=seen.append)
        again = predict_tile(inputs, _SmoothContentPredictor(), seen[5].tile)
    assert len(seen) == stats["tiles"] == 16
    assert sum(t.has_buildings for t in seen) == stats["tiles_with_buildings"]
    blended = np.zeros_like(out)
    for t in seen:
        fr0, fr1, fc0, fc1 = t.tile.foot
        assert t.field.shape == (2, fr1 - fr0, fc1 - fc0)
        assert t.map_.shape[1:] == (t.tile.inp[1] - t.tile.inp[0], t.tile.inp[3] - t.tile.inp[2])
        # the footprint's geotransform puts its corner where the image grid does
        assert t.footprint_transform * (0, 0) == pytest.approx(grid_px.transform * (fc0, fr0))
        assert t.transform * (0, 0) == pytest.approx(grid_px.transform * (t.tile.inp[2], t.tile.inp[0]))
        blended[:, fr0:fr1, fc0:fc1] += t.field * t.tile.weight_rows[None, :, None] * t.tile.weight_cols[None, None, :]
    assert np.abs(blended - out).max() < 1e-5 and np.abs(out).max() > 1.0
    np.testing.assert_array_equal(again.field, seen[5].field)


def test_the_per_tile_hook_gets_each_stages_field_of_a_pipeline(austin, austin_px):
    _, _, _, geoms = austin_px
    seen = []
    combo = ComposedPredictor([_ConstantPredictor(2.0, 1.0), _ConstantPredictor(-0.5, 3.0)])
    with RasterReader(austin["image"]) as reader:
        grid = WorkGrid.for_predictor(reader, None)
        predict_tiled(TileInputs(reader, grid, geoms), combo, tile_px=512, sink=lambda r0, s: None,
                      show_progress=False, on_tile=seen.append)
    t = next(t for t in seen if t.has_buildings)
    first, second = t.stage_fields
    assert np.allclose(first, [[[2.0]], [[1.0]]]) and np.allclose(second, [[[-0.5]], [[3.0]]])
    assert np.allclose(t.field, [[[1.5]], [[4.0]]])


def test_predictors_declare_the_protocols_they_follow():
    """The tiler picks the raster-wide pass and per-stage fields by protocol, not by probing."""
    from geoalign.baselines import GlobalShiftPredictor, TVL1Predictor
    from geoalign.inference import FieldPredictor, RasterWidePredictor, StagedPredictor

    local, global_, tvl1 = LocalOffsetPredictor(), GlobalShiftPredictor(), TVL1Predictor()
    combo = ComposedPredictor([local, _ZeroStage()])
    assert all(isinstance(p, FieldPredictor) for p in (local, global_, tvl1, combo))
    assert isinstance(global_, RasterWidePredictor) and not isinstance(local, RasterWidePredictor)
    assert isinstance(combo, StagedPredictor) and not isinstance(local, StagedPredictor)
    assert combo.name == "local+zero" and combo.channels == MAP_CHANNELS and combo.context_px == local.context_px + 74
