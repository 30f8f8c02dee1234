"""``geoalign align``: :func:`geoalign.inference.layer.align_layer` plus the output files.

Outputs in OUTDIR, written as one set (:mod:`geoalign.io.output_set`: ``run.json``, written
last, lists them with their SHA-256; other files in OUTDIR are never touched):

* ``displacement.tif`` — the field: 2 bands float32 on the image grid (tiled, compressed), written
  strip by strip while tiles are predicted: band 1 the move along the CRS's x axis (east), band 2
  along its y axis (north), both in the CRS's units (metres for a projected CRS);
* ``aligned.geojson`` and ``aligned.gpkg`` (layer ``aligned``) — every input feature in input order
  with all its attributes, in the input CRS; each vertex moved by the field sampled bilinearly at
  its position (vertex count and order unchanged); ``shift_m`` = mean vertex move in metres;
  features that do not touch the raster are kept unchanged with ``outside_image = True``; those
  that cross its edge have ``partly_outside = True`` (their vertices past the edge take the mean
  move of their vertices on the raster);
* ``overlay.png`` — the image (decimated to ≤ ``overlay_max_px``) with input outlines in red and
  aligned ones in green.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field as dc_field
from pathlib import Path
from typing import Callable

import geopandas as gpd
import numpy as np
import shapely

from geoalign.grid import PixelGrid, reproject_to
from geoalign.inference.layer import align_layer, moved_mask
from geoalign.inference.protocol import FieldPredictor
from geoalign.inference.tiling import TileField, predict_tiled
from geoalign.io.output_set import output_set
from geoalign.io.raster import RasterReader
from geoalign.io.vectors import read_vectors, write_vectors
from geoalign.io.writers import draw_overlay


@dataclass
class AlignResult:
    """What one run did, for the summary line and for callers."""

    out_dir: Path
    method: str
    n_features: int
    n_outside: int
    width: int
    height: int
    seconds: float
    median_shift_m: float
    tiles: int
    tiles_with_buildings: int
    n_no_polygon: int = 0
    note: str = ""
    paths: dict = dc_field(default_factory=dict)

    @property
    def megapixels(self) -> float:
        return self.width * self.height / 1e6

    def summary(self) -> str:
        mps = self.megapixels / self.seconds if self.seconds > 0 else float("inf")
        note = f" ({self.note})" if self.note else ""
        kept = (f", {self.n_no_polygon} with no polygon kept unchanged" if self.n_no_polygon else "")
        return (f"aligned {self.n_features} features ({self.n_outside} outside the image{kept}) with "
                f"{self.method}{note} on {self.width}×{self.height} px in {self.seconds:.1f} s "
                f"({mps:.2f} MP/s); median shift {self.median_shift_m:.2f} m → {self.out_dir}")


def align_raster(
    image_path: str | Path, buildings_path: str | Path, out_dir: str | Path, predictor: FieldPredictor, *,
    method: str | None = None, note: str = "", tile_px: int = 2048, blend_px: int = 64,
    layer: str | None = None, overlay_max_px: int = 1600, show_progress: bool = True,
    on_tile: Callable[[TileField], None] | None = None, predict: Callable[..., dict] = predict_tiled,
    inputs: list[str | Path] | None = None, report=None,
) -> AlignResult:
    """Align the buildings to the image with ``predictor`` (:func:`geoalign.inference.layer.align_layer`)
    and write the output set (module docstring); ``on_tile``: the tiler's per-tile hook;
    ``predict``: what computes and blends the tiles (:func:`geoalign.inference.layer.write_field`);
    ``inputs``: the files the run reads, when more than the image (a mosaic's rasters);
    ``report``: a :class:`geoalign.report.attach.ReportRequest` (trust report, same pass)."""
    t0 = time.perf_counter()
    out_dir = Path(out_dir)
    gdf = read_vectors(buildings_path, layer=layer)
    names = ("displacement.tif", "aligned.geojson", "aligned.gpkg", "overlay.png") + (report.names if report else ())
    read = [*(inputs or [image_path]), buildings_path] + ([report.truth_path] if report and report.truth_path else [])
    with RasterReader(image_path) as reader, output_set(out_dir, names, command="align", inputs=read) as stage:
        trust = report.start(reader, gdf, predictor) if report else None
        try:
            hook = on_tile if trust is None else (trust if on_tile is None else
                                                  (lambda tf: (on_tile(tf), trust.on_tile(tf))))
            aligned, field = align_layer(reader, gdf, predictor, stage / "displacement.tif", tile_px=tile_px,
                                         blend_px=blend_px, show_progress=show_progress,
                                         source=str(buildings_path), on_tile=hook, predict=predict)
            if trust is not None:
                aligned = trust.finish(aligned, gdf, stage)
            write_vectors(aligned, stage / "aligned.geojson")
            write_vectors(aligned, stage / "aligned.gpkg")
            moving = moved_mask(aligned)
            draw_alignment(reader, gdf[moving], aligned[moving], stage / "overlay.png", max_px=overlay_max_px)
        finally:
            if trust is not None:
                trust.close()  # the report's files complete before the output set is committed
    paths = {"displacement": out_dir / names[0], "geojson": out_dir / names[1], "gpkg": out_dir / names[2],
             "overlay": out_dir / names[3]}
    shifts = aligned["shift_m"].to_numpy()[moving]
    return AlignResult(
        out_dir=out_dir, method=method or predictor.name, n_features=len(gdf),
        n_outside=int(aligned["outside_image"].sum()), n_no_polygon=field.n_no_polygon, width=reader.width, height=reader.height,
        seconds=time.perf_counter() - t0, median_shift_m=float(np.median(shifts)) if len(shifts) else 0.0,
        tiles=field.tiles, tiles_with_buildings=field.tiles_with_buildings, note=note, paths=paths,
    )


def draw_alignment(reader: RasterReader, before: gpd.GeoDataFrame, after: gpd.GeoDataFrame, path: Path, *,
                   max_px: int) -> None:
    """The image (decimated to ≤ ``max_px``) with the input outlines in red, the aligned in green."""
    grid = PixelGrid.of(reader)
    factor = max(1.0, max(reader.width, reader.height) / max_px)
    shape = (max(1, int(round(reader.height / factor))), max(1, int(round(reader.width / factor))))
    image, _ = reader.read(out_shape=shape)
    sx, sy = shape[1] / reader.width, shape[0] / reader.height

    def to_overlay_px(gdf: gpd.GeoDataFrame) -> np.ndarray:
        geoms = np.asarray(reproject_to(gdf, grid.crs).geometry.values, dtype=object)
        return shapely.transform(grid.to_pixels(geoms), lambda xy: xy * np.array([sx, sy]))

    draw_overlay(image, [(to_overlay_px(before), (255, 0, 0)), (to_overlay_px(after), (0, 255, 0))], path)
