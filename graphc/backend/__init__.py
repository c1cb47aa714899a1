"""Backends that execute an optimized FunctionGraph."""
