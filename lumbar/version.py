"""The package version, defined once: ``pyproject.toml`` reads it from here, and so does everything else."""

__version__ = "0.1.0"
