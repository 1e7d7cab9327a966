"""Benchmarks that print side-by-side ratios (not tests): `python -m bench.<name> --help`."""
