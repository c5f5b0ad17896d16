r"""The pure maths of the kernels: functions of tensors, no Pyro.

Everything here takes positions with a leading chain dimension, ``(C, D)``, and reduces over the
last dimension only, so one chain and a batch of chains run the same code.

- :mod:`.integrators`: leapfrog (and Euler, for teaching), and leapfrog on to a U-turn;
- :mod:`.metrics`: the inverse mass matrix on flat vectors (:class:`~.metrics.Metric`);
- :mod:`.mh`: the chains' state, the per-step record and the Metropolis-Hastings correction;
- :mod:`.ravel`: a dict of tensors as one flat vector, and back;
- :mod:`.turning`, :mod:`.chees`: the rules that learn HMC's trajectory length;
- :mod:`.validation`: the argument checks, whose errors name the argument and what it may be.
"""
