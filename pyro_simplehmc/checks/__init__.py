r"""What the kernels are checked against, and how.

- :mod:`.statistics`: ESS, MCSE, z-scores, R-hat, the Bonferroni threshold and the verdicts;
- :mod:`.testing`: the kernel test kit (one-step invariance, MCSE z-tests, Geweke);
- :mod:`.targets`: the chapter's targets as Pyro models with known truth;
- :mod:`.posteriordb`: Pyro ports of posteriordb posteriors and their reference summaries.
"""
