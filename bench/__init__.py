"""Fan-out benchmark: eventwire against a ``websockets.broadcast()`` baseline.

``make bench`` (``python -m bench``) runs both servers in one process tree,
drives them with the C load generator in ``loadgen.c`` and writes
``docs/benchmarks.md`` and ``bench/out/results.json``.
"""
