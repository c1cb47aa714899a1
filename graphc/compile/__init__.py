"""Turning graphs into callables: ``function``, shared variables, modes."""
