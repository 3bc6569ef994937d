"""Benchmarks of promisesim's engines: run ``python -m benchmarks --help``."""
