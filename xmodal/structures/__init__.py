"""Typed containers shared by data, models and losses (no dict that creates keys on typos)."""

from xmodal.structures.lidar_camera import LidarCameraBatch, LidarCameraSample, PixelPairs, collate_lidar_camera

__all__ = ["LidarCameraBatch", "LidarCameraSample", "PixelPairs", "collate_lidar_camera"]
