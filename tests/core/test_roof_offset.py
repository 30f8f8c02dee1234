"""The label-to-edge offset of benchmarks.roof_offset finds a known translation."""

from __future__ import annotations

import numpy as np
import pytest
import shapely

from benchmarks.roof_offset import edge_offsets_px, summary
from geoalign.inference.pick import edge_magnitude


@pytest.mark.parametrize("shift", [(2.0, -1.5), (-3.5, 3.0), (0.0, 0.0)])
def test_the_offset_that_puts_a_label_on_its_roof_is_the_labels_shift(shift):
    image = np.full((3, 96, 96), 0.2, np.float32)
    image[:, 30:60, 25:70] = 0.8  # a roof: x 25..70, y 30..60
    roof = shapely.box(25, 30, 70, 60)
    label = shapely.affinity.translate(roof, -shift[0], -shift[1])
    other = shapely.box(10, 70, 20, 80)  # a second building, 2 px off its own roof
    image[:, 72:82, 10:20] = 0.8
    magnitude = edge_magnitude(image, np.ones((96, 96), bool))
    offsets = edge_offsets_px(magnitude, np.array([label, other], dtype=object), search_px=4.0)
    np.testing.assert_allclose(offsets[0], shift, atol=0.01)
    np.testing.assert_allclose(offsets[1], (0.0, 2.0), atol=0.01)
    row = summary(offsets[:1], np.array([5]))
    assert row["median_offset_px"] == pytest.approx(np.hypot(*shift), abs=0.01)
