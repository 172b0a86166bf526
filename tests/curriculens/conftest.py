"""Fixtures of the curriculens tests: the dashboard's planted experiment, for the analysis API
and the tracker export (``tests.dashboard.conftest.build_experiment``: a real tiny parity
teacher and students, probe rows planted at their checkpoint steps)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def planted(tmp_path_factory):
    """The planted experiment (trained once per session, a few seconds); treat it as read only."""
    from tests.dashboard.conftest import build_experiment

    return build_experiment(tmp_path_factory.mktemp("planted-runs"))
