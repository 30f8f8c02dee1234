"""Procedurally rendered cities for pre-training the alignment network (domain randomization)."""

from geoalign.synthetic.render import render_city
from geoalign.synthetic.pairs import build_synthetic_dataset, synthetic_pair

__all__ = ["render_city", "synthetic_pair", "build_synthetic_dataset"]
