"""Synthetic worlds written in real dataset formats (driving: nuScenes, indoor: ScanNet)."""
