"""``geoalign train DATASET -o MODEL_DIR``: options only; the logic is geoalign.train.run."""

from __future__ import annotations

import json
import sys

import click

from cli.options import FiniteFloat, parse_scales, seed_option, symmetries_option


@click.command("train")
@click.argument("dataset_dir", type=click.Path(file_okay=False, exists=True))
@click.option("-o", "--output", "model_dir", required=True, type=click.Path(file_okay=False),
              help="Model folder to write (weights, config, model card).")
@click.option("--rounds", default=3, show_default=True, type=click.IntRange(1),
              help="Iterative realignment rounds (train on D_r, realign D0 → D_{r+1}).")
@click.option("--realign-with", type=click.Choice(["learned", "local+learned"]), default="learned",
              show_default=True,
              help="What realigns the maps between rounds: the round's chain alone (the paper's "
                   "method) or align's default pipeline (classical local offsets, then the chain's scale 1).")
@click.option("--realign-smooth-px", default=0.0, show_default=True, type=FiniteFloat(0),
              help="Average the realigning field over neighbouring buildings within this many pixels (for "
                   "label noise smooth across a map source: a georeferencing offset or drift; 0: off).")
@symmetries_option("--realign-symmetries",
                   help="Average the chain's realigning field over this many rotations/flips of each tile "
                   "(N times the realignment's cost; geoalign align --symmetries).")
@click.option("--align-pipeline", type=click.Choice(["learned", "local+learned"]), default="local+learned",
              show_default=True,
              help="The pipeline `geoalign align` runs with this model (recorded on the model card).")
@click.option("--learned-scales", default="1", show_default=True, metavar="S,S", callback=parse_scales,
              help="Scales of the chain that run behind the classical stage in local+learned, and that "
                   "realign the maps with --realign-with local+learned.")
@click.option("--pick-scales", default=None, metavar="S,S", callback=parse_scales,
              help="A second learned proposal behind the classical stage in local+learned, the chain at "
                   "these scales, picked building by building by the image's edges (recorded on the "
                   "model card; geoalign align --pick-scales).")
@click.option("--chain-scales", default=None, metavar="S,S", callback=parse_scales,
              help="The scales the chain alone runs (geoalign align --method learned), coarse to fine; a "
                   "scale given twice runs twice, reaching twice as far (recorded on the model card; "
                   "default: each scale coarser than 1 twice, the others once; docs/model.md).")
@click.option("--smooth-sigma-px", default=6.0, show_default=True, type=FiniteFloat(0),
              help="Edge-weighted smoothing layer added to the trained chain (pixels of each scale; "
                   "parameter-free, not used while training; 0: none).")
@click.option("--steps", default=500, show_default=True, type=click.IntRange(1), help="Training steps per round.")
@click.option("--pretrain-steps", default=500, show_default=True, type=click.IntRange(0),
              help="Steps on synthetic cities before the real data (0: none).")
@click.option("--synthetic-pairs", default=3000, show_default=True, type=click.IntRange(1))
@click.option("--synthetic-weight", default=0.3, show_default=True, type=FiniteFloat(0),
              help="Share of synthetic batches mixed into the rounds.")
@click.option("--batch-size", default=12, show_default=True, type=click.IntRange(1))
@click.option("--threads", default=1, show_default=True, type=click.IntRange(1), help="CPU threads for torch.")
@click.option("--work-dir", type=click.Path(file_okay=False), default=None,
              help="Checkpoints and round outputs [default: runs/<MODEL_DIR name>].")
@click.option("--resume", is_flag=True, help="Continue a killed run from its last checkpoints.")
@click.option("--nproc", default=1, show_default=True, type=click.IntRange(1),
              help="Training processes on this machine (DistributedDataParallel; each takes its share of every "
                   "batch and --threads threads). Several machines: torchrun, see docs/distributed.md.")
@click.option("--cascade-weight", default=0.0, show_default=True, type=FiniteFloat(0),
              help="Share of cascade batches in every round (0: none): pairs at --learned-scales whose map "
                   "is what the classical stage of local+learned leaves, the target its residual, cut from "
                   "the round's maps.")
@click.option("--cascade-dataset", type=click.Path(file_okay=False, exists=True), default=None,
              help="Cascade pairs of the first round, built by `geoalign dataset build --cascade local` "
                   "(the later rounds cut theirs with its settings) [default: cut with the defaults].")
@click.option("--init-from", "init_model", type=click.Path(file_okay=False, exists=True), default=None,
              help="Start from this model folder's weights and chain configuration (fine-tuning).")
@click.option("--per-scale-nets", is_flag=True,
              help="One network per scale (with --init-from, each starts from the model's shared one), so "
                   "training some scales leaves the others' networks unchanged.")
@click.option("--train-scales", default=None, metavar="S,S", callback=parse_scales,
              help="Draw training pairs only at these scales [default: all of the chain's].")
@click.option("--widen-net", "widen_nets", multiple=True, type=(click.IntRange(0), click.IntRange(1),
              click.IntRange(1)), metavar="SCALE FEATURES HIDDEN",
              help="Give the network at SCALE this many features and hidden channels before training, "
                   "starting from what the narrower one computes (with --init-from; unties the networks). "
                   "Repeatable.")
@click.option("--average-tail", default=0.0, show_default=True, type=FiniteFloat(0, 1),
              help="Each realignment round ends on the mean weights of this last fraction of its steps "
                   "(tail averaging: the round depends less on its last batches; 0: its last step's weights).")
@click.option("--rounds-lr", default=None, type=FiniteFloat(0, min_open=True), metavar="LR",
              help="Peak learning rate of the realignment rounds [default: pretraining's, 3e-3].")
@seed_option
def train(dataset_dir, model_dir, rounds, realign_with, realign_smooth_px, realign_symmetries, align_pipeline,
          learned_scales, pick_scales, chain_scales, smooth_sigma_px, steps, pretrain_steps, synthetic_pairs,
          synthetic_weight, batch_size, threads, work_dir, resume, nproc, cascade_weight, cascade_dataset, init_model,
          per_scale_nets, train_scales, widen_nets, average_tail, rounds_lr, seed) -> None:
    """Train the chained alignment network on a dataset built by `geoalign dataset build`."""
    from geoalign.train.distributed import launch
    from geoalign.train.run import train_model

    card = launch(train_model, nproc, dataset_dir, model_dir, work_dir=work_dir, rounds=rounds, steps=steps,
                  pretrain_steps=pretrain_steps, synthetic_pairs=synthetic_pairs,
                  synthetic_weight=synthetic_weight, seed=seed, threads=threads, batch_size=batch_size,
                  resume=resume, realign_with=realign_with, align_pipeline=align_pipeline,
                  learned_scales=learned_scales, pick_scales=pick_scales, chain_scales=chain_scales,
                  smooth_sigma_px=smooth_sigma_px,
                  cascade_weight=cascade_weight, cascade_dataset=cascade_dataset, init_model=init_model,
                  per_scale_nets=per_scale_nets, train_scales=train_scales,
                  realign_smooth_px=realign_smooth_px, realign_symmetries=realign_symmetries,
                  widen_nets=widen_nets, average_tail=average_tail, rounds_lr=rounds_lr, command=" ".join(["geoalign", *sys.argv[1:]]))
    if card is None:  # a torchrun rank other than 0: rank 0 reports
        return
    for m in card["metrics"]["rounds"]:
        click.echo(json.dumps({k: m[k] for k in m if k != "val"}), err=True)
    click.echo(f"model written to {model_dir}", err=True)
