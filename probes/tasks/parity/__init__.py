"""The sparse-parity task's probes (``probes.registry`` finds them by the task's name).

- ``model``: held-out accuracy and loss (``probes.model_probe``);
- ``common``: the options (table there), support and degrees, seeded probe inputs and memo keys
  the probes share;
- ``fourier``: ``fourier``, |mean_x chi_A(x) p(x)| for in- and off-support monomials
  (paper section 3.1);
- ``linear``: ``linear``, logistic-regression probes for chi_A(x) at each hooked site.
"""

from __future__ import annotations

from probes.base import Probe
from probes.tasks.parity.common import parse_options as parse_options  # the registry's options hook


def probes() -> dict[str, Probe]:
    """The parity probes, by name, in their default sweep order."""
    from probes.model_probe import ModelProbe
    from probes.tasks.parity.fourier import FourierProbe
    from probes.tasks.parity.linear import LinearProbe

    return {"model": ModelProbe(), "fourier": FourierProbe(), "linear": LinearProbe()}
