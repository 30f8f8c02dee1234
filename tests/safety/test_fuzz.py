"""Fuzzing the commands with hypothesis: odd vector layers, odd rasters, odd options.

The property, for every input: either a valid output, or one line ``Error: ...`` and a non-zero
exit; never a traceback, never a partial file, and the inputs keep their bytes (SHA-256 before and
after). Examples are few (tens per test) and small (a 96 px crop of the Austin sample), with a
fixed seed (``derandomize``), so each test takes seconds and fails the same way every time
(``GEOALIGN_FUZZ_EXAMPLES=500`` for a longer search).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
import shapely
from affine import Affine
from click.testing import CliRunner
from hypothesis import HealthCheck, Phase, given, settings, strategies as st
from rasterio.windows import Window

from cli.main import main

FUZZ = settings(max_examples=int(os.environ.get("GEOALIGN_FUZZ_EXAMPLES", "30")), deadline=None, derandomize=True, database=None,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
#: The crop of the Austin sample the fuzzing runs on (pixels; 0.3 m each).
CROP_PX = 96
ORIGIN = (616830.0, 3344670.0)  # its north-west corner, EPSG:26914


@pytest.fixture(scope="module")
def crop(austin, tmp_path_factory, crop_raster) -> dict:
    """A 96×96 px crop of the Austin sample and the buildings that touch it."""
    folder = tmp_path_factory.mktemp("fuzz")
    with rasterio.open(austin["image"]) as src:
        col, row = ~src.transform * ORIGIN
    image = folder / "crop.tif"
    bounds, data, profile = crop_raster(austin["image"], Window(int(col), int(row), CROP_PX, CROP_PX), image,
                                        untiled=True)
    gdf = gpd.read_file(austin["buildings"])
    gdf = gdf[gdf.intersects(shapely.box(*bounds))]
    buildings = folder / "crop.gpkg"
    gdf.to_file(buildings, driver="GPKG")
    return {"image": image, "buildings": buildings, "bounds": bounds, "data": data,
            "profile": profile, "gdf": gdf}


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def check_property(args: list, inputs: list[Path], outputs: list[Path], work: Path) -> object:
    """Run the CLI; assert the property of the module docstring; return the result."""
    before = {p: sha256(p) for p in inputs}
    result = CliRunner().invoke(main, ["-q", *map(str, args)])
    assert "Traceback" not in result.output, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        f"{type(result.exception).__name__}: {result.exception}")
    if result.exit_code != 0:
        lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
        assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
        for out in outputs:
            assert not out.exists() or out.is_dir() and not any(out.iterdir()), f"{out} left behind"
    leftovers = [p for p in work.rglob("*") if ".part" in p.name or p.name.startswith(".geoalign-staging")]
    assert leftovers == [], leftovers
    assert {p: sha256(p) for p in inputs} == before, "an input changed"
    return result


# --- vector inputs ------------------------------------------------------------------------------
def _geometry(kind: str, x: float, y: float, size: float):
    """One geometry of ``kind`` around (x, y) (EPSG:26914 metres)."""
    box = shapely.box(x, y, x + size, y + size)
    if kind == "box":
        return box
    if kind == "degenerate":  # all vertices on one line
        return shapely.Polygon([(x, y), (x + size, y), (x + 2 * size, y), (x, y)])
    if kind == "point_ring":
        return shapely.Polygon([(x, y)] * 4)
    if kind == "bowtie":
        return shapely.Polygon([(x, y), (x + size, y + size), (x + size, y), (x, y + size)])
    if kind == "hole_touching_shell":
        return shapely.Polygon(box.exterior.coords, [[(x, y), (x + size / 2, y + size / 4),
                                                      (x + size / 4, y + size / 2)]])
    if kind == "multipolygon":
        return shapely.MultiPolygon([box, shapely.box(x + 2 * size, y, x + 3 * size, y + size)])
    if kind == "overlapping_multipolygon":
        return shapely.MultiPolygon([box, shapely.box(x + size / 2, y, x + 1.5 * size, y + size)])
    if kind == "empty":
        return shapely.Polygon()
    if kind == "null":
        return None
    if kind == "huge":
        return shapely.box(x * 1e9, y * 1e9, x * 1e9 + size, y * 1e9 + size)
    if kind == "point":
        return shapely.Point(x, y)
    if kind == "line":
        return shapely.LineString([(x, y), (x + size, y + size)])
    if kind == "collection":
        return shapely.GeometryCollection([box, shapely.Point(x, y)])
    raise ValueError(kind)


GEOMETRY_KINDS = ["box", "degenerate", "point_ring", "bowtie", "hole_touching_shell", "multipolygon",
                  "overlapping_multipolygon", "empty", "null", "huge", "point", "line", "collection"]

features = st.lists(
    st.tuples(st.sampled_from(GEOMETRY_KINDS), st.floats(-0.5, 1.5), st.floats(-0.5, 1.5),
              st.floats(0.0, 12.0)),
    min_size=0, max_size=8,
)
#: The CRS written into the file: right, wrong (degrees, web mercator), or none.
crs_choice = st.sampled_from(["EPSG:26914", "EPSG:26914", "EPSG:4326", "EPSG:3857", None])


def write_layer(path: Path, feats, crs, bounds) -> None:
    w, s, e, n = bounds
    geoms = [_geometry(k, w + fx * (e - w), s + fy * (n - s), size) for k, fx, fy, size in feats]
    gdf = gpd.GeoDataFrame({"id": list(range(len(geoms)))}, geometry=gpd.GeoSeries(geoms), crs=None)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # geopandas/pyogrio notes about missing CRS, mixed types
        if path.suffix == ".geojson":
            # GeoJSON through GDAL: with a crs member when one is set, else RFC 7946's WGS84
            gdf.set_crs(crs, allow_override=True).to_file(path, driver="GeoJSON") if crs else \
                gdf.to_file(path, driver="GeoJSON")
        else:
            gdf.set_crs(crs, allow_override=True).to_file(path, driver="GPKG") if crs else \
                gdf.to_file(path, driver="GPKG")


@FUZZ
@given(feats=features, crs=crs_choice, fmt=st.sampled_from([".gpkg", ".geojson"]),
       command=st.sampled_from(["align", "misalign"]))
def test_fuzz_vector_inputs(crop, feats, crs, fmt, command):
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        layer = work / f"layer{fmt}"
        try:
            write_layer(layer, feats, crs, crop["bounds"])
        except Exception:  # a geometry no driver can write is not an input anyone has
            return
        if command == "align":
            out = work / "out"
            args = ["align", crop["image"], layer, "-o", out, "--method", "global"]
        else:
            out = work / "m.gpkg"
            args = ["misalign", crop["image"], layer, "-o", out, "--field", work / "f.tif"]
        result = check_property(args, [crop["image"], layer], [out, work / "f.tif"], work)
        if result.exit_code == 0:
            written = gpd.read_file(out / "aligned.gpkg" if command == "align" else out)
            if command == "align":  # every feature, in order; the areal ones (repaired) valid
                areal = _areal_rows(layer)
                assert len(written) == len(feats)
                written = written.iloc[areal]
            assert written.is_valid.all()
            assert np.isfinite(shapely.get_coordinates(written.geometry.values)).all()


def _areal_rows(layer: Path) -> list[int]:
    """Rows of ``layer`` with a polygon once repaired (align moves these; the rest stay as given)."""
    import warnings

    from geoalign.io.vectors import clean_buildings, read_vectors

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return list(clean_buildings(read_vectors(layer)).index)


# --- raster inputs ------------------------------------------------------------------------------
DTYPES = ["uint8", "int8", "uint16", "int16", "uint32", "int32", "float32", "float64"]


@st.composite
def rasters(draw):
    return {
        "dtype": draw(st.sampled_from(DTYPES)),
        "bands": draw(st.integers(1, 8)),
        "width": draw(st.sampled_from([1, 2, 7, 33, CROP_PX])),
        "height": draw(st.sampled_from([1, 3, 16, CROP_PX])),
        "nodata": draw(st.sampled_from(["none", "everywhere", "some"])),
        "geographic": draw(st.booleans()),
        "constant": draw(st.booleans()),
    }


def write_raster(path: Path, spec: dict, crop: dict) -> None:
    rng = np.random.default_rng(0)
    h, w, n = spec["height"], spec["width"], spec["bands"]
    base = crop["data"][:, :h, :w].astype(np.float64).mean(axis=0)
    data = np.stack([base * (1 + 0.1 * b) for b in range(n)])
    if spec["constant"]:
        data[:] = 7
    info = np.iinfo(spec["dtype"]) if spec["dtype"][0] in "ui" else np.finfo(spec["dtype"])
    data = np.clip(data, info.min, info.max).astype(spec["dtype"])
    nodata = None
    if spec["nodata"] != "none":
        nodata = 0 if spec["dtype"][0] in "ui" else -9999.0
        if spec["nodata"] == "everywhere":
            data[:] = nodata
        else:
            data[:, rng.random((h, w)) < 0.5] = nodata
    t = crop["profile"]["transform"]
    crs, transform = "EPSG:26914", Affine(t.a, 0, t.c, 0, t.e, t.f)
    if spec["geographic"]:
        from pyproj import Transformer

        lon, lat = Transformer.from_crs(26914, 4326, always_xy=True).transform(t.c, t.f)
        crs, transform = "EPSG:4326", Affine(3e-6, 0, lon, 0, -3e-6, lat)
    with rasterio.open(path, "w", driver="GTiff", width=w, height=h, count=n, dtype=spec["dtype"],
                       crs=crs, transform=transform, nodata=nodata) as dst:
        dst.write(data)


@FUZZ
@given(spec=rasters(), command=st.sampled_from(["align-global", "align-local", "misalign"]))
def test_fuzz_raster_inputs(crop, spec, command):
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        image = work / "img.tif"
        write_raster(image, spec, crop)
        buildings = work / "b.gpkg"
        shutil.copy(crop["buildings"], buildings)
        if command.startswith("align"):
            out = work / "out"
            args = ["align", image, buildings, "-o", out, "--method", command.split("-")[1]]
        else:
            out = work / "m.gpkg"
            args = ["misalign", image, buildings, "-o", out, "--field", work / "f.tif"]
        result = check_property(args, [image, buildings], [out, work / "f.tif"], work)
        if result.exit_code == 0 and command.startswith("align"):
            with rasterio.open(out / "displacement.tif") as src:
                field = src.read()
                assert (src.width, src.height) == (spec["width"], spec["height"])
            assert np.isfinite(field).all()


# --- options ------------------------------------------------------------------------------------
numbers = st.sampled_from(["0", "-1", "1", "3", "40", "1e9", "nan", "inf", "-inf", "abc", "", "1,0"])


@FUZZ
@given(command=st.sampled_from(["align", "misalign", "fetch-imagery", "evaluate"]),
       a=numbers, b=numbers, c=numbers, d=numbers)
def test_fuzz_options(crop, command, a, b, c, d):
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        image, buildings = crop["image"], crop["buildings"]
        w, s, e, n = crop["bounds"]
        if command == "align":
            out = work / "out"
            args = ["align", image, buildings, "-o", out, "--method", "local", "--search-px", a,
                    "--tile-px", b, "--learned-scales", c or "1"]
            outs = [out]
        elif command == "misalign":
            out = work / "m.gpkg"
            args = ["misalign", image, buildings, "-o", out, "--max-disp", a, "--correlation-length", b,
                    "--seed", c]
            outs = [out]
        elif command == "fetch-imagery":
            out = work / "x.tif"
            args = ["fetch", "imagery", "--bbox", a, b, c, d, "--bbox-crs", "EPSG:26914",
                    "--source", f"file:{image}", "-o", out, "--resolution", a]
            if a == b == c == d == "1":  # a real bbox now and then
                args[3:7] = [str(w), str(s), str(e), str(n)]
            outs = [out]
        else:
            out = work / "ev"
            args = ["evaluate", buildings, buildings, "--image", image, "--id-field", a or "id",
                    "-o", out]
            outs = [out]
        check_property(args, [image, buildings], outs, work)
