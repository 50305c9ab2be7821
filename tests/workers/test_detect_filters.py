import numpy as np
import pytest
from matplotlib.path import Path as PolygonPath

from streamflow_workers.detect.filters import (VEHICLES, centres, class_ids, inside_polygon, keep_classes,
                                    keep_in_region, keep_min_size, roi_polygon)

BOXES = np.array([
    [0, 0, 10, 10, 0.9, 2],    # car, centre (5, 5)
    [20, 20, 60, 40, 0.8, 7],  # truck, centre (40, 30)
    [50, 0, 54, 30, 0.7, 0],   # person, centre (52, 15)
    [90, 90, 92, 91, 0.6, 5],  # bus, tiny, centre (91, 90.5)
], dtype=np.float32)


def test_keep_classes_by_index_and_name():
    assert keep_classes(BOXES, VEHICLES)[:, 5].tolist() == [2, 7, 5]
    assert keep_classes(BOXES, ["person"])[:, 5].tolist() == [0]
    assert keep_classes(BOXES, ["car", "7"])[:, 5].tolist() == [2, 7]
    assert keep_classes(BOXES[:0], [2]).shape == (0, 6)
    with pytest.raises(ValueError, match="unknown class name 'tank'"):
        class_ids(["tank"])


def test_region_keeps_centres_inside_polygon():
    assert centres(BOXES)[1].tolist() == [40, 30]
    assert keep_in_region(BOXES, roi_polygon(0, 0, 50, 50))[:, 5].tolist() == [2, 7]
    triangle = [(0, 0), (100, 0), (100, 80)]  # below the line y = 0.8 x
    assert keep_in_region(BOXES, triangle)[:, 5].tolist() == [7, 0]
    assert keep_in_region(BOXES[:0], triangle).shape == (0, 6)
    with pytest.raises(ValueError):
        keep_in_region(BOXES, [(0, 0), (1, 1)])


def test_inside_polygon_matches_matplotlib_on_a_concave_shape():
    shape = [(0, 0), (10, 0), (10, 10), (5, 4), (0, 10)]
    points = np.random.default_rng(3).uniform(-1, 11, size=(2000, 2))
    expected = PolygonPath(shape).contains_points(points)
    assert (inside_polygon(points, shape) == expected).mean() > 0.999


def test_min_size():
    assert keep_min_size(BOXES, min_width=5)[:, 5].tolist() == [2, 7]
    assert keep_min_size(BOXES, min_height=25)[:, 5].tolist() == [0]
    assert keep_min_size(BOXES, min_area=101)[:, 5].tolist() == [7, 0]
