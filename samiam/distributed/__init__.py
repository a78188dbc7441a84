"""Scale out on Dask: one task per image on local worker processes, a running scheduler or Slurm.

Modules, one job each:
    * ``spec``: parse ``--cluster`` (``local:N``, ``tcp://HOST:PORT``, ``slurm``) into a ``ClusterSpec``;
    * ``cluster``: create or connect to the cluster and open a client on it;
    * ``submit``: client side, bounded submission of one task per item, results as they finish;
    * ``worker``: worker side, models loaded once per worker process, on the worker's device;
    * ``segment``: ``samiam segment`` on a cluster (per-image records merged by ``samiam.batch``).

Dask is an optional extra (``pip install 'samiam[dask]'``); nothing here is imported by the serial path.
"""
