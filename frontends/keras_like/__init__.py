"""Keras-style Sequential models built as graphc graphs (see DESIGN.md)."""
