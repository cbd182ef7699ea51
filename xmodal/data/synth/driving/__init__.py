"""Synthetic driving world written in the real nuScenes format (``xmodal synth driving``).

Modules: :mod:`.rig` (sensors, calibration, timing), :mod:`.trajectory` (analytic road and ego
motion), :mod:`.layout` (static world), :mod:`.objects` / :mod:`.traffic` (annotated instances and
their motion), :mod:`.materials` (labels, textures, reflectivity), :mod:`.render` (open3d ray
casting), :mod:`.tables` (nuScenes tables), :mod:`.canbus` (IMU), :mod:`.generate` (entry point),
:mod:`.check` (LiDAR label / camera mask agreement through the dataset).
"""

__all__ = ["generate_driving_world", "scene_names"]


def __getattr__(name: str):
    # Lazy: importing a light submodule (canbus, check, rig) must not load open3d.
    if name in __all__:
        from xmodal.data.synth.driving import generate

        return getattr(generate, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
