"""Task probe plug-ins, one package per task name (``probes.registry`` finds them by name).

- ``parity``: ``fourier`` and ``linear`` probes, and the parity maths they share (``maths``:
  monomials, Fourier coefficients over the hypercube).
- ``pcfg``: ``nt_span``, ``ngram`` and ``context`` probes.
- ``text``: the PCFG probes rebound to imported LMs, plus ``logit_lens``.

Each package's ``__init__`` holds ``probes()`` (and optionally ``parse_options``); the
machinery they use (``probes.base``, ``probes.store``, ``probes.linear``, ...) is one level up.
Nothing is imported here.
"""
