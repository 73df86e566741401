"""Benchmarks of the pipeline and the product (`make bench`); results in benchmarks/RESULTS*.md.

The scripts run as files (``python benchmarks/bench.py``); as a package they import their shared
helpers as ``benchmarks._common`` and friends, one way: scripts -> section modules -> helpers.
"""
