"""``curriculens import`` from the command line: import, probe, summary, export; one-line errors;
the README's foreign-trajectory quickstart as written."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from curriculens import constants as C
from curriculens.cli import main
from training.foreign.fixtures import sample_text, write_trainer_dir

REPO = Path(__file__).resolve().parents[3]
SMALL = ["--option", "n_sentences=8", "--option", "ngram_sentences=4", "--option", "max_tokens=200", "--device", "cpu"]


@pytest.fixture(scope="module")
def trainer_dir(tmp_path_factory) -> Path:
    out = write_trainer_dir(tmp_path_factory.mktemp("src") / "out", "bert", steps=(0, 5))
    (out / "corpus.txt").write_text(sample_text(40))
    return out


def test_import_probe_summary_export(trainer_dir, tmp_path, capsys, one_thread):
    exp = tmp_path / "exp"
    corpus = trainer_dir / "corpus.txt"
    assert (
        main(["import", str(trainer_dir), "--out", str(exp), "--task", "text", "--task-set", f"corpus={corpus}"]) == 0
    )
    out = capsys.readouterr().out
    assert "imported 2 checkpoints (dirs, BertForMaskedLM" in out
    assert main(["-q", "probe", str(exp), *SMALL]) == 0
    assert "0 failed" in capsys.readouterr().out
    assert main(["summary", str(exp), "--probe", "ngram"]) == 0
    assert "robust_n3" in capsys.readouterr().out
    assert main(["-q", "export", str(exp), "--format", "html", "--out", str(tmp_path / "figs")]) == 0
    assert (tmp_path / "figs" / "emergence.csv").is_file()
    assert any(p.name.startswith("features_teacher_ngram") for p in (tmp_path / "figs").iterdir())


@pytest.mark.parametrize(
    "extra,message",
    [
        (["--task", "text", "--task-set", "corpus=/nonexistent.txt"], "text corpus not found"),
        (["--task", "text", "--role", "student"], "a student needs --method"),
        (["--task", "nosuchtask"], "unknown task"),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(trainer_dir, tmp_path, capsys, extra, message):
    exp = tmp_path / "exp"
    assert main(["import", str(trainer_dir), "--out", str(exp), *extra]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("curriculens: error: ") and message in err[0]
    assert not exp.exists()


def test_missing_source(tmp_path, capsys):
    assert main(["import", str(tmp_path / "nope"), "--out", str(tmp_path / "exp"), "--task", "text"]) == 2
    assert "no such file or directory" in capsys.readouterr().err
    assert not (tmp_path / "exp").exists()


def _readme_snippet() -> str:
    text = (REPO / "README.md").read_text()
    m = re.search(r"<!-- foreign-quickstart -->\s*```bash\n(.*?)```", text, re.S)
    assert m, "README has no foreign-trajectory quickstart block"
    return m.group(1)


@pytest.mark.slow
def test_readme_foreign_quickstart_runs_as_written(tmp_path):
    """The snippet, verbatim, in a directory laid out like a fresh clone after ``make setup``."""
    (tmp_path / ".venv").symlink_to(REPO / ".venv")
    (tmp_path / "scripts").symlink_to(REPO / "scripts")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    proc = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", _readme_snippet()],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "imported 3 checkpoints" in proc.stdout and "close_n3" in proc.stdout
    assert (tmp_path / "demo_out" / "foreign" / C.RESULTS_DB).is_file()
