"""Frontends built on graphc."""
