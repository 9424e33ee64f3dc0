"""The county demo (``xinfang demo``) and the synthetic data it shares with the benchmarks.

Kept apart from ``xinfang.cli`` so that the command line stays a thin shell:
the demo builds real nodes and syncs them, and the benchmarks draw their
names and ID numbers from the same place.
"""
