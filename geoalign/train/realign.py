"""Iterative dataset realignment (Girard, Charpiat, Tarabalka, IGARSS 2019): train on D_r, align
the ORIGINAL maps of D0 → D_{r+1}.

The public round loop is :func:`realign_rounds`. A dataset here is a list of
:class:`~geoalign.dataset.SourcePair` (image + buildings); each round rebuilds the pairs of its
sources with the same :class:`~geoalign.dataset.DatasetConfig`, trains (continuing from the
previous round's weights), then moves every footprint of the *original* D0 buildings with the
round's model, writing ``round{r+1}/buildings/{k}.geojson``; ``realign_with="local+learned"``
realigns with the product's default pipeline instead (the classical local-offset search, then
the round's chain restricted to ``learned_scales`` on its residual). Metrics per round: validation errors,
mean vertex shift, and, when true buildings are known (self-denoising), the median vertex error of
D0 and of the realigned maps against the truth.
"""

from __future__ import annotations

import json
import logging
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import shapely

from geoalign.dataset import DatasetConfig, SourcePair, build_dataset
from geoalign.dataset.build import MANIFEST
from geoalign.dataset.torch_dataset import read_manifest
from geoalign.errors import InputFileError, OptionError
from geoalign.grid import reproject_to
from geoalign.inference.compose import behind_local
from geoalign.inference.layer import align_layer
from geoalign.inference.protocol import FieldPredictor
from geoalign.inference.smooth import SmoothedPredictor
from geoalign.inference.symmetry import SymmetryAveragedPredictor
from geoalign.io.raster import RasterReader
from geoalign.io.vectors import read_buildings, write_vectors
from geoalign.model.chain import Chain
from geoalign.model.checkpoint import load_model, save_model
from geoalign.model.predictor import ChainPredictor
from geoalign.train.distributed import on_main
from geoalign.train.round_similarity import write_round_similarity
from geoalign.train.trainer import TrainConfig, TrainSet, train_chain

log = logging.getLogger(__name__)


def align_source(predictor: FieldPredictor, image_path: Path, buildings_path: Path, gsd_m: float | None,
                 *, work_dir: Path | None = None):
    """Align one source's buildings with ``predictor`` (:func:`geoalign.inference.layer.align_layer`,
    the aligner of ``geoalign align``; its field GeoTIFF goes to a temporary folder in ``work_dir``).

    Returns (aligned GeoDataFrame in the input CRS, per-vertex move in pixels at ``gsd_m``, the
    image's own pixels when None).
    """
    gdf = read_buildings(buildings_path)
    with RasterReader(image_path) as reader, tempfile.TemporaryDirectory(dir=work_dir) as tdir:
        aligned, _ = align_layer(reader, gdf, predictor, Path(tdir) / "field.tif", show_progress=False,
                                 source=str(buildings_path))
        crs, px_m = reader.crs, gsd_m or reader.gsd_m
        before = shapely.get_coordinates(reproject_to(gdf, crs).geometry.values)
        after = shapely.get_coordinates(reproject_to(aligned, crs).geometry.values)
    out = aligned.drop(columns=["shift_m", "outside_image", "partly_outside"])
    return out, np.linalg.norm(after - before, axis=1) / px_m if len(before) else np.zeros(0)


def vertex_errors_px(a_path: Path, b_path: Path, image_path: Path, gsd_m: float | None) -> np.ndarray:
    """Distances (pixels at ``gsd_m``) between corresponding vertices of two same-topology files."""
    with RasterReader(image_path) as reader:
        crs, src_gsd = reader.crs, reader.gsd_m
    a = shapely.get_coordinates(reproject_to(read_buildings(a_path), crs).geometry.values)
    b = shapely.get_coordinates(reproject_to(read_buildings(b_path), crs).geometry.values)
    if len(a) != len(b):
        raise InputFileError(f"{a_path} and {b_path} do not have the same vertices: compare a layer with "
                             "its own aligned or misaligned copy.")
    gsd = gsd_m or src_gsd
    return np.linalg.norm(a - b, axis=1) / gsd


def vertices_inside_image(path: Path, image_path: Path) -> np.ndarray:
    """Per vertex of ``path``: True where its feature lies wholly on the raster. A feature the image
    shows only in part cannot be placed from the image alone: aligners leave it near where it is."""
    with RasterReader(image_path) as reader:
        geoms = reproject_to(read_buildings(path), reader.crs).geometry.values
        inside = shapely.within(geoms, shapely.box(*reader.bounds))
    return np.repeat(inside, shapely.get_num_coordinates(geoms))


REALIGN_WITH = ("learned", "local+learned")


@dataclass(frozen=True)
class CascadeSets:
    """Cascade pairs (:mod:`geoalign.dataset.cascade`) in every round's training mixture, at
    ``weight``: round r cuts them from its own maps (the realigned D_r) with ``config``
    (``config.cascade`` set); ``first``: already built pairs of D0 for round 0."""

    config: DatasetConfig
    weight: float
    first: Path | None = None

    def round_set(self, r: int, rdir: Path, sources: Sequence[SourcePair], progress: bool) -> TrainSet:
        c_dir = self.first if (r == 0 and self.first is not None) else rdir / "cascade"
        if on_main(lambda: not (c_dir / MANIFEST).exists()):  # one answer for every rank
            on_main(build_dataset, list(sources), c_dir, self.config, progress=progress)
        return TrainSet(c_dir, self.weight, f"C{r}")


def realigner(chain: Chain, gsd_m: float | None, realign_with: str, learned_scales: tuple[int, ...],
              smooth_px: float = 0.0, symmetries: int = 1):
    """The predictor a round realigns D0 with (an eval-mode copy of the chain: training goes on);
    ``symmetries`` > 1: the chain's field averaged over that many rotations/flips of each tile
    (:class:`~geoalign.inference.symmetry.SymmetryAveragedPredictor`); ``smooth_px`` > 0: the
    realigning field averaged over neighbouring buildings within that many pixels
    (:class:`~geoalign.inference.smooth.SmoothedPredictor`). The chain moves its maps by the
    exact inverse field, as in training (the labels of the next round are worth the 1.7× of
    the coarser inverse ``align`` uses)."""
    chain_at = chain.copy_with() if realign_with == "learned" else chain.fine_stages(tuple(learned_scales))
    learned = ChainPredictor(chain_at, gsd_m, inversion_step_px=1)
    if symmetries > 1:
        learned = SymmetryAveragedPredictor(learned, symmetries)
    predictor = learned if realign_with == "learned" else behind_local(learned)
    return SmoothedPredictor(predictor, smooth_px) if smooth_px > 0 else predictor


def _next_sources(metrics: dict) -> list[SourcePair]:
    return [SourcePair(Path(s["image"]), Path(s["buildings"]), s["split"]) for s in metrics["next_sources"]]


def _finish_round(r: int, rdir: Path, chain: Chain, sources: Sequence[SourcePair], truth: Sequence[Path | None] | None,
                  gsd_m: float, realign_with: str, learned_scales: tuple[int, ...], steps: int,
                  history: list[dict], smooth_px: float = 0.0, symmetries: int = 1) -> dict:
    """Save round ``r``'s model, realign the original maps with it, write and return the round's metrics."""
    save_model(chain, rdir / "model", gsd_m=gsd_m)
    predictor = realigner(chain, gsd_m, realign_with, learned_scales, smooth_px, symmetries)
    nxt, shifts, err_before, err_after = [], [], [], []
    for k, orig in enumerate(sources):
        aligned, shift = align_source(predictor, orig.image, orig.buildings, gsd_m, work_dir=rdir)
        out = rdir / "realigned" / f"{k}.geojson"
        out.parent.mkdir(parents=True, exist_ok=True)
        write_vectors(aligned, out)
        nxt.append(replace(orig, buildings=out))
        shifts.append(shift)
        if truth is not None and truth[k] is not None:
            err_before.append(vertex_errors_px(orig.buildings, truth[k], orig.image, gsd_m))
            err_after.append(vertex_errors_px(out, truth[k], orig.image, gsd_m))
    all_shift = np.concatenate(shifts) if shifts else np.zeros(0)
    m = {"round": r, "train_steps": steps, "val": history[-1] if history else {},
         "realign_with": realign_with if realign_with == "learned" else f"{realign_with} {list(learned_scales)}",
         "realign_smooth_px": smooth_px, "realign_symmetries": symmetries,
         "mean_shift_px": float(all_shift.mean()) if all_shift.size else 0.0,
         "next_sources": [s.to_json() for s in nxt]}
    if err_before:
        eb, ea = np.concatenate(err_before), np.concatenate(err_after)
        m.update({"d0_median_error_px": float(np.median(eb)), "realigned_median_error_px": float(np.median(ea)),
                  "d0_rms_error_px": float(np.sqrt((eb**2).mean())), "realigned_rms_error_px": float(np.sqrt((ea**2).mean()))})
    (rdir / "metrics.json").write_text(json.dumps(m, indent=2))
    return m


def realign_rounds(
    sources: Sequence[SourcePair], work_dir: str | Path, *, rounds: int = 3,
    dataset_config: DatasetConfig = DatasetConfig(), train_config: TrainConfig = TrainConfig(),
    chain: Chain | None = None, extra_sets: Sequence[TrainSet] = (), val_root: str | Path | None = None,
    truth: Sequence[Path | None] | None = None, resume: bool = False, progress: bool = True,
    on_round: Callable[[int, dict], None] | None = None, first_dataset: str | Path | None = None,
    realign_with: str = "learned", learned_scales: tuple[int, ...] = (1,),
    cascade: CascadeSets | None = None, realign_smooth_px: float = 0.0, realign_symmetries: int = 1,
) -> tuple[Chain, list[dict]]:
    """Run ``rounds`` rounds; returns the last round's chain and one metrics dict per round.

    ``extra_sets`` (e.g. synthetic pairs) join every round's training mixture; ``truth`` gives, per
    source, the true buildings (same vertices as the source's) for error-vs-truth metrics.
    Each round's model is saved in ``work_dir/round{r}/model``; ``resume`` skips finished rounds.
    ``first_dataset``: an already built D0 (its pairs are used as they are for round 0).
    ``cascade``: cascade pairs of each round's maps join its training mixture (:class:`CascadeSets`).
    ``realign_smooth_px`` > 0: the realigning field is averaged over neighbouring buildings within
    that many pixels (:func:`realigner`), for label noise that is smooth over a map source;
    ``realign_symmetries`` > 1: the chain's realigning field averaged over that many rotations/flips.
    """
    if realign_with not in REALIGN_WITH:
        raise OptionError(f"realign_with must be one of {REALIGN_WITH}, got {realign_with!r}")
    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    chain = chain or Chain()
    gsd_m = dataset_config.gsd_m
    current = list(sources)
    metrics: list[dict] = []
    for r in range(rounds):
        rdir = work_dir / f"round{r}"
        done = rdir / "metrics.json"
        if resume and done.exists():
            m = json.loads(done.read_text())
            chain, _ = load_model(rdir / "model")
            chain.train()
            current = _next_sources(m)
            metrics.append(m)
            continue
        ds_dir = Path(first_dataset) if (r == 0 and first_dataset is not None) else rdir / "dataset"
        if on_main(lambda: not (ds_dir / MANIFEST).exists()):  # one answer for every rank
            on_main(build_dataset, current, ds_dir, dataset_config, progress=progress)  # rank 0 builds, the others wait
        round_sets = [TrainSet(ds_dir, 1.0, f"D{r}"), *extra_sets]
        if cascade is not None:
            round_sets.append(cascade.round_set(r, rdir, current, progress))
        history = train_chain(chain, round_sets, rdir / "train", train_config,
                              val_root=val_root or ds_dir, resume=resume, progress=progress)
        if gsd_m is None:
            gsd_m = read_manifest(ds_dir)["gsd_m"]
        # Rank 0 scores a sample of the round's patches (similarity histograms), realigns D0 (a
        # whole-image inference per source) and writes the round; the others wait.
        on_main(write_round_similarity, chain, ds_dir, rdir / "model", r, learned_scales, seed=train_config.seed)
        m = on_main(_finish_round, r, rdir, chain, sources, truth, gsd_m, realign_with, learned_scales,
                    train_config.steps, history, realign_smooth_px, realign_symmetries)
        chain.train()
        metrics.append(m)
        if on_round:
            on_round(r, m)
        current = _next_sources(m)
    return chain, metrics
