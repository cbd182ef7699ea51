"""Pictures: the files exist, have the expected layout, and show what they claim."""

import numpy as np
from PIL import Image

from xmodal.cli.main import main


def test_vis_scannet_frame(indoor_world, tmp_path, capsys):
    _, info = indoor_world
    assert main(["vis", "sample", "--dataset", "scannet", "--info", str(info), "--frame", "2",
                 "--out", str(tmp_path)]) == 0
    img = np.asarray(Image.open(tmp_path / "frame_projection.png"))
    assert img.ndim == 3 and img.shape[1] > 3 * 600  # colour | vertices | GT side by side
    assert len(np.unique(img.reshape(-1, 3), axis=0)) > 1000  # a picture, not a blank
    assert main(["vis", "sample", "--dataset", "scannet", "--info", str(info), "--frame", "99"]) == 2
    assert "--frame 99 is out of range" in capsys.readouterr().err
