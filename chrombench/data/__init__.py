"""Data layer: archive-format parsing, the dataset cache, Zenodo fetch and the simremc simulator."""

from .arrays import DatasetRef, GroundTruth, Split, TaskData

__all__ = ["DatasetRef", "GroundTruth", "Split", "TaskData"]
