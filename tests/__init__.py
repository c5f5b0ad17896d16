import torch

# These tests run many tiny tensor operations; with more than one intra-op thread each of them
# pays for thread coordination (measured on 2 cores: one Pyro potential-and-gradient took 2 ms with
# 2 threads against 0.2 ms with 1).
torch.set_num_threads(1)
