"""Writing what align and evaluate produce: JSON metrics, overlay and curve PNGs (atomically)."""

from geoalign.report.write import draw_overlay, plot_accuracy_curves, write_json

__all__ = ["write_json", "draw_overlay", "plot_accuracy_curves"]
