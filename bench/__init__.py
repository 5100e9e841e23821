"""Benchmarks behind `make bench`: speed and memory on real text, never inside unit tests."""
