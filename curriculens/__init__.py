"""curriculens: progressive distillation and the implicit curriculum.

The library lives in the top-level packages ``models``, ``training``, ``probes`` and
``dashboard``; this package holds what they share (constants, file I/O, errors, seeding) and the
``curriculens`` command line.

``curriculens.open(EXPERIMENT_DIR)`` opens one experiment for analysis (``curriculens.analysis``,
read only, pandas DataFrames and plotly figures). Importing this package imports nothing else:
``open`` loads the analysis module (pandas, plotly; never torch) when first called.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from curriculens.version import __version__

if TYPE_CHECKING:  # pragma: no cover
    from pathlib import Path

    from curriculens.analysis import Experiment

__all__ = ["__version__"]  # not "open": a star import must not shadow the builtin


def open(path: str | Path) -> Experiment:  # noqa: A001 - the public name the notebooks use
    """The experiment at ``path`` (the directory holding ``experiment.json``), read only.

    See ``curriculens.analysis.Experiment``; a path that is not an experiment raises
    ``curriculens.errors.CurriculensError`` with a one-line message.
    """
    from curriculens.analysis import Experiment

    return Experiment(path)
