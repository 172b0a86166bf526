"""Progress bars print plain lines when stderr is not a terminal (issue 25.9)."""

import io
import os
import sys

from tqdm.auto import tqdm

from curriculens.cli.progress import PlainProgress, plain_progress_when_piped


def test_redraws_become_lines_and_other_text_passes_through():
    buf = io.StringIO()
    out = PlainProgress(buf)
    out.write("\rteacher:   1%|          | 39/400\rteacher:   2%|          | 78/400")
    out.write("\r" + " " * 40 + "\r\x1b[A")  # tqdm's clear on close (leave=False): nothing
    out.write("INFO a log line\n")
    assert buf.getvalue().splitlines() == [
        "teacher:   1%|          | 39/400",
        "teacher:   2%|          | 78/400",
        "INFO a log line",
    ]
    assert "\r" not in buf.getvalue()


def test_a_bar_in_a_pipe_writes_few_plain_lines(monkeypatch):
    buf = io.StringIO()  # not a tty
    monkeypatch.setattr(sys, "stderr", buf)
    monkeypatch.delenv("TQDM_MININTERVAL", raising=False)
    with plain_progress_when_piped(interval_s=3600):
        assert os.environ["TQDM_MININTERVAL"] == "3600"
        for _ in tqdm(range(10_000), desc="run", leave=True):
            pass
    assert sys.stderr is buf and "TQDM_MININTERVAL" not in os.environ  # both restored
    lines = buf.getvalue().splitlines()
    assert 1 <= len(lines) <= 3 and "\r" not in buf.getvalue()  # the first draw and the last, not 10,000 redraws
    assert lines[-1].startswith("run: 100%") and "10000/10000" in lines[-1]


def test_a_terminal_is_left_alone(monkeypatch):
    class Tty(io.StringIO):
        def isatty(self):
            return True

    tty = Tty()
    monkeypatch.setattr(sys, "stderr", tty)
    with plain_progress_when_piped():
        assert sys.stderr is tty
