"""Registration error of aligned buildings against ground truth (see :mod:`.metrics`)."""

from geoalign.evaluate.metrics import (
    TAU_PX, VertexErrors, accuracy_curve, evaluate_alignment, summarize, vertex_errors,
)

__all__ = ["vertex_errors", "VertexErrors", "summarize", "accuracy_curve", "evaluate_alignment", "TAU_PX"]
