"""Manifests: reading a file or stdin, validating every target, naming every problem by path."""
