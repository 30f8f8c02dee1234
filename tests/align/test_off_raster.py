"""Vertices past the raster's edge move with their feature's visible part."""

from __future__ import annotations

import numpy as np
import pytest

from geoalign.inference.layer import off_raster_moves

SIZE_PX = (100, 80)  # width, height


def test_vertices_past_the_edge_take_the_mean_move_of_their_features_visible_vertices():
    # feature 0: a square half past the east edge (x = 100); feature 1: wholly on the raster
    px = np.array([[90, 10], [110, 10], [110, 20], [90, 20], [10, 10], [20, 10]], float)
    index = np.array([0, 0, 0, 0, 1, 1])
    delta = np.array([[1, 0], [9, 9], [9, 9], [3, 2], [5, 5], [6, 6]], float)
    out = off_raster_moves(delta, px, index, SIZE_PX)
    np.testing.assert_allclose(out[[1, 2]], [[2, 1], [2, 1]])  # mean of (1, 0) and (3, 2)
    np.testing.assert_allclose(out[[0, 3, 4, 5]], delta[[0, 3, 4, 5]])


@pytest.mark.parametrize("past", [[-0.5, 40], [50, -1], [100.5, 40], [50, 81]])
def test_every_side_of_the_raster_counts_as_past_the_edge(past):
    px = np.array([[50, 40], past], float)
    out = off_raster_moves(np.array([[1, 2], [7, 7]], float), px, np.array([0, 0]), SIZE_PX)
    np.testing.assert_allclose(out[1], [1, 2])


def test_a_feature_with_no_vertex_on_the_raster_keeps_the_field_at_the_edge():
    # a large polygon that covers the raster's corner: every vertex is past the edge
    px = np.array([[-10, -10], [200, -10], [200, 200], [-10, 200]], float)
    delta = np.array([[1, 1], [2, 2], [3, 3], [4, 4]], float)
    np.testing.assert_allclose(off_raster_moves(delta, px, np.zeros(4, int), SIZE_PX), delta)
