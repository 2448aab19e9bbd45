"""The maths of zmqnode: numpy (and safetensors for the file), no sockets or Raft.

- ``mlp``: the network (``Architecture``), forward and backward passes, Adam;
- ``options``: the training options a client may set (``TrainOptions``);
- ``problem``: from a client's arrays to a normalized ``Problem``, split
  into ``Chunk`` objects;
- ``training``: rounds of model averaging (``TrainingPlan``, ``train_chunk``);
- ``distributed``: a trainer process's entry point (``run_chunk``);
- ``model_file``: the trained ``Model`` and its ``.bin`` file (docs/FORMAT.md);
- ``errors``: the typed errors (``BadInput``, ``BadOptions``...).
"""
