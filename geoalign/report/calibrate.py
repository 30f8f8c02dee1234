"""Calibrating expected_error_px on held-out regions of the training sources.

Held-out regions (never trained on, from the model card): the east strip of every train source
(``held_out.east_strip_fraction_of_each_train_source``) and the whole validation sources. They
are split in two disjoint sets:

* **calibration** (:func:`calibration_regions`): the north half of every east strip;
* **evaluation** (:func:`evaluation_regions`, used by ``make bench-trust``): the south half of
  every east strip, and the whole validation sources.

A *case* is one region at 0.3 m whose truth buildings are misaligned by a random smooth field
(correlation length 128 px) and aligned by the pipeline as one tile (context reflected past the
region as ``align``'s tiler does); each building's error is the mean distance of its vertices
to the truth. A *stale* case per calibration region places the region's footprints mirrored
left-right, kept where they touch no real footprint, so the image shows no building under
them: they are given :data:`STALE_ERROR_PX` (no position in the image is right for them).
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import shapely
from affine import Affine
from rasterio.windows import Window

from geoalign.deform import deform_geometries, random_smooth_field
from geoalign.deform import sample_field
from geoalign.grid import PixelGrid, reproject_to
from geoalign.inference.protocol import FieldPredictor, StagedPredictor
from geoalign.io.raster import RasterReader
from geoalign.io.vectors import read_buildings
from geoalign.rasterize import MAP_CHANNELS, rasterize_map, translate_geoms
from geoalign.report import calibration as cal

ROOT = Path(__file__).resolve().parents[2]
CORRELATION_LENGTH_PX = 128.0
STALE_ERROR_PX = 20.0


@dataclass(frozen=True)
class Region:
    name: str
    image: Path
    buildings: Path
    cols: tuple[float, float]  # fraction of the raster's width
    rows: tuple[float, float]  # fraction of its height


def _sources(model_dir) -> tuple[list[dict], float]:
    from geoalign.model.card import read_card

    card = read_card(model_dir)
    return card["training"]["sources"], float(card["held_out"]["east_strip_fraction_of_each_train_source"])


def calibration_regions(model_dir) -> list[Region]:
    """The north half of the east (held-out) strip of every train source."""
    sources, east = _sources(model_dir)
    return [Region(f"{Path(s['image']).stem} east strip, north half", ROOT / s["image"], ROOT / s["buildings"],
                   (1 - east, 1.0), (0.0, 0.5)) for s in sources if s["split"] == "train"]


def evaluation_regions(model_dir) -> list[Region]:
    """The south half of the same strips, and every validation source whole."""
    sources, east = _sources(model_dir)
    out = []
    for s in sources:
        if s["split"] == "val":
            out.append(Region(f"{Path(s['image']).stem} (val source)", ROOT / s["image"], ROOT / s["buildings"],
                              (0.0, 1.0), (0.0, 1.0)))
        else:
            out.append(Region(f"{Path(s['image']).stem} east strip, south half", ROOT / s["image"],
                              ROOT / s["buildings"], (1 - east, 1.0), (0.5, 1.0)))
    return out


@dataclass
class RegionData:
    name: str
    image: np.ndarray  # (3, H, W) at gsd_m
    valid: np.ndarray
    transform: Affine  # of the region's grid
    crs: object
    truth: np.ndarray  # geometries in region pixels, wholly inside


def load_region(region: Region, gsd_m: float = 0.3, *, buildings_path: Path | None = None) -> RegionData:
    """The region resampled to ``gsd_m`` and the buildings wholly inside it (region pixels)."""
    with RasterReader(region.image) as reader:
        x0, x1 = (int(round(reader.width * f)) for f in region.cols)
        y0, y1 = (int(round(reader.height * f)) for f in region.rows)
        zoom = reader.gsd_m / gsd_m
        shape = (max(1, int(round((y1 - y0) * zoom))), max(1, int(round((x1 - x0) * zoom))))
        image, valid = reader.read(Window(x0, y0, x1 - x0, y1 - y0), out_shape=shape)
        t = reader.transform * Affine.translation(x0, y0) * Affine.scale((x1 - x0) / shape[1], (y1 - y0) / shape[0])
        grid = PixelGrid(t, shape[1], shape[0], reader.crs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gdf = reproject_to(read_buildings(buildings_path or region.buildings), grid.crs)
    px = grid.to_pixels(np.asarray(gdf.geometry.values, dtype=object))
    keep = shapely.within(px, shapely.box(0, 0, grid.width, grid.height))
    return RegionData(region.name, image, valid, t, grid.crs, px[keep])


def stale_footprints(data: RegionData, *, clearance_px: float = 3.0) -> np.ndarray:
    """The region's footprints mirrored left-right, kept where they touch no real one."""
    W = data.image.shape[-1]
    mirrored = shapely.transform(data.truth, lambda xy: np.column_stack([W - xy[:, 0], xy[:, 1]]))
    if len(mirrored) == 0:
        return mirrored
    real = shapely.union_all(shapely.buffer(data.truth, clearance_px))
    return mirrored[~shapely.intersects(mirrored, real)]


@dataclass
class CaseResult:
    building_error_px: np.ndarray  # mean vertex error per building
    vertex_error_px: list[np.ndarray]  # per building
    report: object  # the TrustReport that consumed the case


def run_case(data: RegionData, misaligned: np.ndarray, truth: np.ndarray | None, predictor: FieldPredictor,
             report_factory,
             *, channels: tuple[str, ...] = MAP_CHANNELS) -> CaseResult:
    """Align ``misaligned`` (region pixels) on the region as one tile and feed the report.

    ``truth`` (same order) gives the errors; ``None``: every building is stale
    (:data:`STALE_ERROR_PX`). ``report_factory(buildings_px, shape, transform)`` builds the
    :class:`~geoalign.report.trust.TrustReport`."""
    from geoalign.report.trust import ClassicalStage

    H, W = data.image.shape[-2:]
    ctx = int(predictor.context_px)
    pads = ((ctx, ctx), (ctx, ctx))
    mode = "reflect" if min(H, W) > ctx else "symmetric"
    image = np.pad(data.image, ((0, 0), *pads), mode=mode if min(H, W) > ctx // 2 else "edge")
    valid = np.pad(data.valid, pads, constant_values=False)
    map_ = rasterize_map(translate_geoms(misaligned, ctx, ctx), (H + 2 * ctx, W + 2 * ctx), channels=channels)
    classical = None
    if isinstance(predictor, StagedPredictor):  # the report reads the classical stage's windows, as in align
        field, own, seen = predictor.predict_stages(image, valid, map_)
        if len(own) == 2:
            classical = ClassicalStage(own[0], seen.windows, seen.stage_maps[1])
    else:
        field = predictor.predict(image, valid, map_)
    field = np.asarray(field, np.float32)
    report = report_factory(misaligned, (H, W), data.transform)
    report.on_tile(inp=(-ctx, H + ctx, -ctx, W + ctx), core=(0, H, 0, W), image=image, valid=valid, map_=map_,
                   field=field, classical=classical)
    errs, per_vertex = [], []
    for n, g in enumerate(misaligned):
        xy = shapely.get_coordinates(g)
        moved = xy + sample_field(field, xy + ctx)
        if truth is None:
            e = np.full(len(xy), STALE_ERROR_PX)
        else:
            e = np.hypot(*(moved - shapely.get_coordinates(truth[n])).T)
        per_vertex.append(e)
        errs.append(float(e.mean()))
    return CaseResult(np.array(errs), per_vertex, report)


def misalign(data: RegionData, amplitude_px: float, seed) -> np.ndarray:
    H, W = data.image.shape[-2:]
    phi = random_smooth_field((H, W), max_amplitude_px=amplitude_px, correlation_length_px=CORRELATION_LENGTH_PX,
                              rng=seed)
    return deform_geometries(data.truth, phi)


def default_predictor(model_dir, search_px: int = 40):
    from geoalign.align.resolve import resolve_predictor

    return resolve_predictor("local+learned", model_dir, search_px=search_px)[0]


def calibrate(model_dir, *, amplitudes=(8.0, 16.0, 32.0), seeds=(100, 101), search_px: int = 40,
              write: bool = True, log=print) -> cal.Calibration:
    """Fit the calibration on :func:`calibration_regions` and (``write``) add it to the model card."""
    from geoalign.report.trust import TrustReport

    t0 = time.perf_counter()
    predictor = default_predictor(model_dir, search_px)
    X, y, rows = [], [], []

    def factory(b, shape, transform):
        return TrustReport(buildings_px=b, grid_shape=shape, work_transform=transform, model_dir=model_dir,
                           search_px=search_px, calibration=False)

    regions = calibration_regions(model_dir)
    for k, region in enumerate(regions):
        data = load_region(region)
        if len(data.truth) == 0:
            continue
        cases = [(a, s) for a in amplitudes for s in seeds] + [("stale", 0)]
        for amp, seed in cases:
            if amp == "stale":
                mis = stale_footprints(data)
                if len(mis) == 0:
                    continue
                res = run_case(data, mis, None, predictor, factory)
            else:
                mis = misalign(data, amp, [int(amp), seed, k])
                res = run_case(data, mis, data.truth, predictor, factory)
            ok = np.isfinite(res.report.features).any(axis=1)
            X.append(res.report.features[ok])
            y.append(res.building_error_px[ok])
            rows.append((region.name, str(amp), int(ok.sum())))
        log(f"calibration: {region.name}: {sum(r[2] for r in rows if r[0] == region.name)} buildings")
    X, y = np.concatenate(X), np.concatenate(y)
    info = {"data": "geoalign.report.calibrate: north halves of the east (held-out) strips of the train "
                    "sources, at 0.3 m; amplitudes "
                    f"{list(amplitudes)} px, seeds {list(seeds)}, plus one stale-map case per region "
                    f"(mirrored footprints on bare ground, error set to {STALE_ERROR_PX:g} px)",
            "evaluated_on": "never on the south halves and the validation sources (make bench-trust)",
            "n_buildings": int(len(y)), "n_stale": int(sum(r[2] for r in rows if r[1] == "stale")),
            "command": f"geoalign model calibrate {model_dir}", "seconds": round(time.perf_counter() - t0, 1)}
    fitted = cal.fit(X, y, info=info)
    pred = fitted.predict_px(X)
    from scipy.stats import spearmanr

    fitted.info["spearman_in_sample"] = float(spearmanr(pred, y).statistic)
    if write:
        cal.write_calibration_section(model_dir, fitted)
    return fitted
