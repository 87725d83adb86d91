"""Pretrained sources; importing this package registers the built-in source kinds."""

from benchmark.sources import rosinality, toy  # noqa: F401  (registers)
from benchmark.sources.base import SOURCES, Source, load_source

__all__ = ["SOURCES", "Source", "load_source"]
