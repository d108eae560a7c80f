"""Fan-out benchmark: eventwire against a ``websockets.broadcast()`` baseline, then several nodes.

``make bench`` (``python -m bench``) runs both servers in one process tree,
then gateway nodes on a redis-server of its own (``cluster.py``), drives
them with the C load generator in ``loadgen.c`` and writes
``docs/benchmarks.md`` and ``bench/out/results.json``.
"""
