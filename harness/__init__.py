"""Real zmqnode clusters on loopback, shared by the tests and the benches.

``harness.cluster.LocalCluster`` starts ``python -m zmqnode`` processes and
talks to them with ``client``; it sits above both ``zmqnode`` and ``client``
and below ``tests/`` and ``bench/``, which import it.
"""
