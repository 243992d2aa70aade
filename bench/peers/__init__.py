"""Peers and ceilings `make bench` measures beside Orders, with fixed source: a ratio
moves only with Orders. Versions are pinned in pyproject.toml's `bench` extra; the
results file records a digest of this folder (bench/report.py)."""
