"""Which predictor ``align`` runs: a learned model, a classical method, or a combination.

Methods: ``global``, ``local``, ``tvl1`` (classical, :mod:`geoalign.baselines`), ``learned`` (the
model in ``model_dir``, default the shipped one, at the scales of its card's ``"chain_scales"``;
without them each scale coarser than 1 twice, :func:`~geoalign.model.chain.chain_alone_scales`)
and ``local+learned`` (classical local offsets as
the coarse stage, the learned chain for the fine residual: only the scales listed in the model
card's ``"combination": {"learned_scales": [...]}``, all of them when it has none; on the held-out
benchmark the coarse learned scales only add noise behind the classical stage; the card's
``"pick_scales"``, when present, adds a second learned proposal picked building by building,
:mod:`geoalign.inference.pick`, which ``pick_scales=()`` turns off).

Default (no method): the model card (of ``model_dir``, else of the shipped model) decides through
its ``"align_pipeline"`` entry (``"learned"`` or ``"local+learned"``), so ``--model DIR`` with the
shipped folder runs exactly the default. A model folder whose card names no pipeline runs its chain
alone; without a model folder and without a pipeline, ``align`` runs the best classical method and
says so in its summary line.
"""

from __future__ import annotations

from pathlib import Path

from geoalign.baselines import BEST_CLASSICAL, METHODS, classical_predictor
from geoalign.errors import OptionError
from geoalign.inference.compose import ComposedPredictor, behind_local

ALL_METHODS = (*METHODS, "learned", "local+learned")


def _learned(model_dir: str | Path | None, *, behind_classical: bool = False,
             scales: tuple[int, ...] | None = None, pick_scales: tuple[int, ...] | None = None,
             pick_passes: int = 1, symmetries: int = 1):
    from geoalign.inference.symmetry import SymmetryAveragedPredictor
    from geoalign.model.chain import chain_alone_scales
    from geoalign.model.checkpoint import read_chain_config
    from geoalign.model.predictor import DEFAULT_MODEL_DIR, load_predictor

    if scales is None and behind_classical:
        scales = card_combination(model_dir).get("learned_scales")
    elif scales is None:
        scales = model_card(model_dir).get("chain_scales") or chain_alone_scales(
            read_chain_config(DEFAULT_MODEL_DIR if model_dir is None else model_dir).scales)

    def stage(at_scales):
        chain = load_predictor(model_dir, scales=None if at_scales is None else tuple(int(s) for s in at_scales))
        return SymmetryAveragedPredictor(chain, symmetries) if symmetries > 1 else chain

    chain = stage(scales)
    if pick_passes > 1:
        from geoalign.inference.pick import PassesPickedPredictor

        return PassesPickedPredictor(chain, pick_passes)
    if not pick_scales:
        return chain
    from geoalign.inference.pick import EdgePickedPredictor

    return EdgePickedPredictor(chain, stage(pick_scales))


def model_card(model_dir: str | Path | None) -> dict:
    """The model card of ``model_dir``, else of the shipped model: the pipeline entries ``align``
    follows (:mod:`geoalign.model.card`)."""
    from geoalign.model.card import read_card
    from geoalign.model.predictor import DEFAULT_MODEL_DIR

    return read_card(DEFAULT_MODEL_DIR if model_dir is None else model_dir)


def card_combination(model_dir: str | Path | None) -> dict:
    """The model card's ``combination`` (of ``model_dir``, else of the shipped model): the scales
    ``local+learned`` runs behind the classical stage and its second proposal's."""
    return model_card(model_dir).get("combination", {})


def _options_note(*, pick_scales: tuple[int, ...] | None = None, passes: int = 1, pick_passes: int = 1,
                  symmetries: int = 1) -> str:
    """The learned stage's options as the summary line states them ("" when none is set)."""
    parts = [(bool(pick_scales), f"scales {','.join(str(s) for s in pick_scales or ())} picked by edges"),
             (passes > 1, f"{passes} passes"), (pick_passes > 1, f"{pick_passes} passes picked by edges"),
             (symmetries > 1, f"averaged over {symmetries} rotations/flips")]
    return "".join(f", {text}" for on, text in parts if on)


def working_gsd_m() -> float | None:
    """The shipped model's GSD: every method, classical or learned, works on that grid, so they
    all search the same ground distance on the same problem (a 7.5 cm raster is resampled to it,
    and ``--search-px`` means the same metres whatever the imagery)."""
    gsd = model_card(None).get("gsd_m")
    return float(gsd) if gsd else None


def resolve_predictor(method: str | None = None, model_dir: str | Path | None = None, *,
                      search_px: int = 40, learned_scales: tuple[int, ...] | None = None,
                      pick_scales: tuple[int, ...] | None = None, passes: int = 1, pick_passes: int = 1,
                      symmetries: int = 1):
    """(predictor, method name, note for the summary line); ``learned_scales`` picks the scales
    of the learned chain that run (default: the model card's ``chain_scales`` for ``learned``,
    each scale coarser than 1 twice without them, and the card's ``combination`` for
    ``local+learned``; a scale given twice runs twice); ``pick_scales``: a second proposal
    behind the classical stage, the chain at these scales, taken building by building where it
    puts the outline on stronger image edges (:mod:`geoalign.inference.pick`; ``local+learned``
    only; default: the model card's, ``()``: none); ``passes``: the chain alone runs this many
    times, each pass on the map the passes before it moved (``learned`` only: each run of a scale
    corrects at most 2.5 px of that scale, 37.5 px over scales 3 to 0 run once each);
    ``pick_passes``: behind the classical stage, the chain runs this many passes and each
    building keeps the pass that puts its outline on the strongest image edges
    (:class:`~geoalign.inference.pick.PassesPickedPredictor`; behind the classical stage with
    ``local+learned``, the chain alone with ``learned``);
    ``symmetries``: the chain's field averaged over that many rotations/flips of its input, 1, 2,
    4 or 8 (:mod:`geoalign.inference.symmetry`; learned methods only)."""
    if passes < 1 or pick_passes < 1:
        raise OptionError(f"passes must be at least 1, got {min(passes, pick_passes)}")
    from geoalign.inference.symmetry import SYMMETRIES

    if symmetries not in SYMMETRIES:
        raise OptionError(f"--symmetries must be one of {', '.join(str(n) for n in SYMMETRIES)}, got {symmetries}")
    options = {"pick_scales": pick_scales, "passes": passes, "pick_passes": pick_passes, "symmetries": symmetries}
    if method is None:
        pipeline = model_card(model_dir).get("align_pipeline")
        if pipeline not in ("learned", "local+learned") and model_dir is not None:
            pipeline = "learned"  # a model folder whose card names no pipeline: its chain alone
        if pipeline in ("learned", "local+learned"):
            predictor, name, options_note = resolve_predictor(pipeline, model_dir, search_px=search_px,
                                                              learned_scales=learned_scales, **options)
            note = "shipped default model" if model_dir is None else f"model card of {model_dir}"
            return predictor, name, note + (f", {options_note}" if options_note else "")
        predictor, name, _ = resolve_predictor(BEST_CLASSICAL, None, search_px=search_px, passes=passes)
        return predictor, name, "no validated learned default model yet: classical fallback"
    if pick_scales and method != "local+learned":
        raise OptionError(f"--pick-scales works behind the classical stage (local+learned), not with {method}; "
                          "run without --method (the default pipeline) or with --method local+learned.")
    if passes > 1 and method != "learned":
        raise OptionError(f"--passes repeats the learned chain alone (--method learned), not {method}.")
    if pick_passes > 1 and method not in ("local+learned", "learned"):
        raise OptionError(f"--pick-passes picks among passes of the learned chain (local+learned or learned), "
                          f"not with {method}.")
    if pick_passes > 1 and passes > 1:
        raise OptionError("give --passes or --pick-passes, not both: --pick-passes N runs N passes and keeps, "
                          "building by building, the one whose outline lands on the strongest image edges.")
    if symmetries > 1 and method in METHODS:
        raise OptionError(f"--symmetries averages the learned chain's field, not the classical {method} search; "
                          "use it with the default pipeline, --method local+learned or --method learned.")
    if pick_passes > 1 and pick_scales:
        raise OptionError("give --pick-scales or --pick-passes, not both: each picks the learned stage's "
                          "proposal building by building.")
    if method in METHODS:
        return classical_predictor(method, search_px=search_px, gsd_m=working_gsd_m()), method, ""
    if method == "learned":
        chain = _learned(model_dir, scales=learned_scales, symmetries=symmetries)
        note = _options_note(**options).lstrip(", ")
        if pick_passes > 1:
            from geoalign.inference.pick import PassesPickedPredictor

            return PassesPickedPredictor(chain, pick_passes), "learned", note
        if passes == 1:
            return chain, "learned", note
        return ComposedPredictor([chain] * passes, name="learned"), "learned", note
    if method == "local+learned":
        if pick_scales is None and pick_passes == 1:
            pick_scales = tuple(int(s) for s in card_combination(model_dir).get("pick_scales") or ()) or None
            options["pick_scales"] = pick_scales
        return behind_local(_learned(model_dir, behind_classical=True, scales=learned_scales,
                                     pick_scales=pick_scales, pick_passes=pick_passes, symmetries=symmetries),
                            search_px=search_px), "local+learned", _options_note(**options).lstrip(", ")
    raise OptionError(f"unknown method {method!r}; choose among {', '.join(ALL_METHODS)}")
