"""Label taxonomies and mappings."""

import numpy as np
import pytest


def test_label_tables_and_map_labels():
    from xmodal.data.labels import NYU40_TO_SCANNET20, SCANNET20_NYU40_IDS, SCANNET_IGNORE, map_labels
    from xmodal.errors import DataError

    assert map_labels(np.array([1, 39, 0, 13]), NYU40_TO_SCANNET20).tolist() == [0, 19, SCANNET_IGNORE, SCANNET_IGNORE]
    assert [int(NYU40_TO_SCANNET20[i]) for i in SCANNET20_NYU40_IDS] == list(range(20))
    with pytest.raises(DataError, match=r"frame 3: ids must lie in \[0, 40\], got \[1, 41\]"):
        map_labels(np.array([1, 41]), NYU40_TO_SCANNET20, "frame 3")
