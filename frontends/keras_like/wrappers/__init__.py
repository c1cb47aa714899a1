"""Wrappers for other libraries (``wrappers.scikit_learn``)."""
