"""lumbar: deep-learning analysis of lumbar spine images, fast on a CPU."""

__version__ = "0.1.0"
