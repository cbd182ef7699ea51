"""xmodal: cross-sensor distillation of frozen 2D / vision-language teachers into 3D and other
sensor students (LiDAR, multi-camera BEV, Gaussian feature fields, IMU, audio)."""

__version__ = "0.2.0"
