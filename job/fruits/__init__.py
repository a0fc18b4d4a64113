"""Fruits! feature pipeline: images -> CNN features -> standardized PCA vectors."""

__version__ = "0.1.0"
