"""The PCFG task's probes (``probes.registry`` finds them by the task's name).

- ``common``: options, sites, token selection, activations and the grouped linear-probe fit
  the probes share;
- ``spans``: ``nt_span``, linear probes for each token's ancestor non-terminal per level;
- ``ngram``: ``ngram``, M_robust / M_close (the paper's n-gram context dependence);
- ``context``: ``context``, linear probes decoding the token at a relative offset.
"""

from __future__ import annotations

from dataclasses import fields

from curriculens.errors import CurriculensError
from probes.base import Probe
from probes.pcfg.common import PCFGProbeOptions


def check_options(options: dict) -> None:
    """Raise ``CurriculensError`` on unknown or bad PCFG probe options (before a sweep writes)."""
    known = {f.name for f in fields(PCFGProbeOptions)} | {"n_probe"}
    unknown = sorted(set(options or {}) - known)
    if unknown:
        raise CurriculensError(f"unknown PCFG probe option(s) {', '.join(unknown)} (known: {', '.join(sorted(known))})")
    try:
        PCFGProbeOptions.from_options(options)
    except TypeError as exc:
        raise CurriculensError(f"bad PCFG probe options: {exc}") from None


def probes() -> dict[str, Probe]:
    """The PCFG probe families, by name (the ``probe`` column of their rows)."""
    from probes.pcfg.context import ContextProbe
    from probes.pcfg.ngram import NgramProbe
    from probes.pcfg.spans import NTSpanProbe

    return {"nt_span": NTSpanProbe(), "ngram": NgramProbe(), "context": ContextProbe()}
