"""Engines: interchangeable consumers of a ModelSpec."""
