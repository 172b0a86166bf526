"""bench_parity_demo_floor: a stage's timing holds that stage only."""

from __future__ import annotations

import benchmarks.bench_parity_demo_floor as bench
from benchmarks.timing import timed as real_timed
from curriculens import constants as C


def test_the_grid_stage_alone_trains_its_teacher_before_the_timing(tmp_path, monkeypatch, one_thread):
    """``--stages grid`` on a fresh directory: the teacher is trained first, outside the timed
    call (the grid's time once included the teacher's), and the grid is timed."""
    exp = tmp_path / "exp"
    seen = []

    def timed(fn):
        seen.append((exp / C.RUNS_DIR / "teacher" / C.DONE_FILE).is_file())
        return real_timed(fn)

    monkeypatch.setattr(bench, "timed", timed)
    cpu, wall = bench.run_stage("grid", exp, "tiny")
    assert seen == [True] and cpu > 0 and wall > 0
    assert any(p.name.startswith("progressive") for p in (exp / C.RUNS_DIR).iterdir())
