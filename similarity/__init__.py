"""Input similarity from the neural network's point of view (Charpiat et al., NeurIPS 2019).

A general PyTorch library: any ``nn.Module``, inputs as a tensor or a re-iterable loader, and
an optional ``output`` callable mapping the model's output to (N, d). See README.md here.
"""

from .density import positive_density, soft_density, threshold_density
from .denoising import denoising_factor, kernel_mean, shift
from .jacobians import jacobians, normalize_jacobians
from .kernels import (correlation, gram, influence, kernel, rotation_invariant_similarity,
                      similarity, trace_similarity)
from .losses import (group_mean_similarity, group_similarity_loss, pair_similarity_loss,
                     whitened_jacobians)
from .neighbours import similarity_histogram, topk_neighbours
from .reference import ReferenceStats, reference_stats, score
from .uncertainty import uncertainty

__all__ = [
    "ReferenceStats",
    "correlation",
    "denoising_factor",
    "gram",
    "group_mean_similarity",
    "group_similarity_loss",
    "influence",
    "jacobians",
    "kernel",
    "kernel_mean",
    "normalize_jacobians",
    "pair_similarity_loss",
    "positive_density",
    "reference_stats",
    "rotation_invariant_similarity",
    "score",
    "shift",
    "similarity",
    "similarity_histogram",
    "soft_density",
    "threshold_density",
    "topk_neighbours",
    "trace_similarity",
    "uncertainty",
    "whitened_jacobians",
]
