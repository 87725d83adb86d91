"""Pretrained sources; the built-in kinds (``rosinality``, ``toy``) register on the first lookup in ``SOURCES``."""

from benchmark.sources.base import SOURCES, Source, load_source, trained_by_harness

__all__ = ["SOURCES", "Source", "load_source", "trained_by_harness"]
