"""The chaos soak: ``make soak`` (``python -m bench.soak``), what an operator runs before a release.

Real processes on loopback (a broker of its own, three ``eventwire serve``
nodes), raw WebSocket subscribers that drop and resume, an HTTP publisher,
and a fault every 30-45 s; every delivery is accounted for. Modules:
``processes`` (the servers), ``subscribers`` and ``wire`` (the clients and
their client-side state), ``publisher``, ``chaos``, ``ledger`` and
``accounting`` (what was recorded, and the judgement), ``logscan``,
``report``, ``run`` (one broker's run) and ``plan`` (sizes and timings).
See docs/delivery.md, "Soak".
"""
