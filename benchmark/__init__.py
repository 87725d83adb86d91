"""GAN transfer benchmark: one harness to compare transfer methods on few-shot targets."""

__version__ = "0.1.0"
