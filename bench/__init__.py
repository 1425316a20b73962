"""Benchmarks against the local stand-in (`python -m bench`, `make bench`). See BENCHMARKS.md.

Targets are stated as ratios against physical baselines measured in the same run where a baseline exists, so they
hold on noisy machines. Benchmarks report; they never run as timed assertions inside `make test`.
"""
