"""expected_error_px: a calibrated map from a building's evidence to its alignment error.

Every building gets a vector of :data:`FEATURES` (the classical stage's window statistics at
the building, the two stages' fields there, its size and image structure, and its tile's
similarity to the training set); ``log(error_px + 0.5)`` is predicted by a ridge regression
on standardized features, fitted on held-out regions of the training sources
(:mod:`geoalign.report.calibrate`) and stored in the model card (``trust_calibration``). A
tile's expected error is the median of its buildings'.

confidence = 1 / (1 + (expected_error_px / TOLERANCE_PX)²): 0.5 when the expected error is
TOLERANCE_PX (2 px = 0.6 m at the model's GSD, the error below which a building counts as
aligned in the accuracy benchmarks), 0.8 at 1 px, 0.2 at 4 px; halved in low-density tiles
(inputs unlike the training set, where the calibration itself is not backed by data).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from geoalign.errors import GeoalignError

TOLERANCE_PX = 2.0
TARGET_OFFSET_PX = 0.5  # log(error + 0.5): a few tenths of a pixel are all alike

CLASSICAL = ("log_confidence", "log_second_peak_ratio", "sqrt_evidence", "unused", "at_border",
             "log_disagreement")
FEATURES = (
    *(f"l0_{k}" for k in CLASSICAL), *(f"l1_{k}" for k in CLASSICAL),
    "at_search_bound",  # share of the building's vertices moved ≥ 0.9 × search_px
    "log_learned_residual_px",  # |total − classical field| at the building: the stages disagree
    "log_move_px",  # |total field| at the building
    "log_area_px", "edge_strength", "valid_fraction",
    "density_quantile", "log_uncertainty", "denoising_factor", "log_shift_px", "log_neighbour_error_px",
)


class CalibrationError(GeoalignError):
    """The model has no trust calibration (or one for other features)."""


@dataclass
class Calibration:
    features: tuple[str, ...]
    mean: np.ndarray
    std: np.ndarray
    coef: np.ndarray
    intercept: float
    fill: np.ndarray  # value of each feature when it is missing (NaN): the calibration mean
    info: dict

    def predict_px(self, X: np.ndarray) -> np.ndarray:
        """Expected error (px, working grid) for feature rows X (n, len(features))."""
        X = np.asarray(X, np.float64).reshape(-1, len(self.features))
        X = np.where(np.isfinite(X), X, self.fill[None])
        z = (X - self.mean) / self.std
        return np.clip(np.exp(z @ self.coef + self.intercept) - TARGET_OFFSET_PX, 0.0, None)

    def to_json(self) -> dict:
        return {"features": list(self.features), "mean": self.mean.tolist(), "std": self.std.tolist(),
                "coef": self.coef.tolist(), "intercept": float(self.intercept), "fill": self.fill.tolist(),
                "target": f"log(error_px + {TARGET_OFFSET_PX}), ridge regression on standardized features",
                "confidence": f"1 / (1 + (expected_error_px / {TOLERANCE_PX})^2), halved in low-density tiles",
                **self.info}

    @classmethod
    def from_json(cls, d: dict) -> "Calibration":
        if tuple(d.get("features", ())) != FEATURES:
            raise CalibrationError("the model card's trust calibration is for other features; "
                                   "recompute it with `geoalign model calibrate`.")
        info = {k: v for k, v in d.items() if k not in ("features", "mean", "std", "coef", "intercept", "fill",
                                                          "target", "confidence")}
        return cls(tuple(d["features"]), np.asarray(d["mean"]), np.asarray(d["std"]), np.asarray(d["coef"]),
                   float(d["intercept"]), np.asarray(d["fill"]), info)


def fit(X: np.ndarray, error_px: np.ndarray, *, ridge: float = 1.0, info: dict | None = None) -> Calibration:
    """Ridge fit of log(error + 0.5) on standardized features (``ridge`` in units of samples)."""
    X = np.asarray(X, np.float64)
    fill = np.nanmean(np.where(np.isfinite(X), X, np.nan), axis=0)
    fill = np.where(np.isfinite(fill), fill, 0.0)
    X = np.where(np.isfinite(X), X, fill[None])
    mean, std = X.mean(0), X.std(0)
    std = np.where(std > 1e-9, std, 1.0)
    Z = (X - mean) / std
    y = np.log(np.asarray(error_px, np.float64) + TARGET_OFFSET_PX)
    b = y.mean()
    A = Z.T @ Z + ridge * np.eye(Z.shape[1])
    coef = np.linalg.solve(A, Z.T @ (y - b))
    return Calibration(FEATURES, mean, std, coef, float(b), fill, dict(info or {}))


def confidence(expected_error_px: np.ndarray, low_density: np.ndarray | None = None) -> np.ndarray:
    """The documented 0–1 mapping (module docstring)."""
    e = np.asarray(expected_error_px, np.float64)
    c = 1.0 / (1.0 + (e / TOLERANCE_PX) ** 2)
    if low_density is not None:
        c = np.where(np.asarray(low_density, bool), 0.5 * c, c)
    return np.where(np.isfinite(c), c, 0.0)


def load_calibration(model_dir) -> Calibration:
    from geoalign.model.card import read_card

    d = read_card(model_dir).get("trust_calibration")
    if not d:
        raise CalibrationError(f"{model_dir}: the model card has no trust calibration; compute it with "
                               f"`geoalign model calibrate {model_dir}`.")
    return Calibration.from_json(d)


def write_calibration_section(model_dir, calibration: Calibration) -> None:
    """Add (or replace) the ``trust_calibration`` section of the model card."""
    from geoalign.model.card import read_card, write_card

    card = read_card(model_dir)
    card["trust_calibration"] = calibration.to_json()
    write_card(model_dir, card)
