import os

import torch

# These tests run many tiny tensor operations; with more than one intra-op thread each of them
# pays for thread coordination (measured on 2 cores: one Pyro potential-and-gradient took 2 ms with
# 2 threads against 0.2 ms with 1). Each pytest-xdist worker imports this package, so each worker
# runs on one thread; the environment variable gives the scripts and command lines the tests start
# in subprocesses one thread each as well (the workers already fill the cores).
torch.set_num_threads(1)
os.environ.setdefault("OMP_NUM_THREADS", "1")
