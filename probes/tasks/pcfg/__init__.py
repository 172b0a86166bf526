"""The PCFG task's probes (``probes.registry`` finds them by the task's name).

- ``common``: options, sites, token selection, activations and the grouped linear-probe fit
  the probes share;
- ``spans``: ``nt_span``, linear probes for each token's ancestor non-terminal per level;
- ``ngram``: ``ngram``, M_robust / M_close (the paper's n-gram context dependence);
- ``context``: ``context``, linear probes decoding the token at a relative offset.
"""

from __future__ import annotations

from probes.base import Probe
from probes.tasks.pcfg.common import PCFGProbeOptions


def parse_options(options: dict | None) -> PCFGProbeOptions:
    """The registry's options hook: typed PCFG probe options; CurriculensError on an unknown
    key or a bad value (before a sweep writes)."""
    return PCFGProbeOptions.from_options(options)


def probes() -> dict[str, Probe]:
    """The PCFG probe families, by name (the ``probe`` column of their rows)."""
    from probes.tasks.pcfg.context import ContextProbe
    from probes.tasks.pcfg.ngram import NgramProbe
    from probes.tasks.pcfg.spans import NTSpanProbe

    return {"nt_span": NTSpanProbe(), "ngram": NgramProbe(), "context": ContextProbe()}
