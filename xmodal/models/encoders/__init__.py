"""Sensor encoders (students): LiDAR sparse-voxel UNet, ..."""
