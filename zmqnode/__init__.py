"""zmqnode: a ZeroMQ cluster that trains small neural networks and replicates them with Raft."""

__version__ = "0.1.0"
