"""``curriculens dashboard``: binds 127.0.0.1 by default, debug off, clear errors."""

from __future__ import annotations

import dash
import pytest

from curriculens.cli import main


@pytest.fixture
def captured_run(monkeypatch):
    calls = []
    monkeypatch.setattr(dash.Dash, "run", lambda self, **kw: calls.append((self, kw)))
    return calls


def test_serves_on_localhost_without_debug(tmp_path, captured_run, capsys):
    assert main(["dashboard", str(tmp_path)]) == 0
    ((app, kw),) = captured_run
    assert kw == {"host": "127.0.0.1", "port": 8050, "debug": False}
    assert isinstance(app, dash.Dash)
    assert "http://127.0.0.1:8050" in capsys.readouterr().out


def test_host_and_port_flags(tmp_path, captured_run):
    assert main(["dashboard", str(tmp_path), "--host", "0.0.0.0", "--port", "9000"]) == 0
    assert captured_run[0][1] == {"host": "0.0.0.0", "port": 9000, "debug": False}


@pytest.mark.parametrize(
    "argv, message",
    [
        (["dashboard", "{missing}"], "does not exist or is not a directory"),
        (["dashboard", "{tmp}", "--port", "70000"], "--port must be in 1..65535"),
    ],
)
def test_bad_arguments_are_one_line_errors(tmp_path, captured_run, capsys, argv, message):
    argv = [a.format(missing=tmp_path / "nope", tmp=tmp_path) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0] and not captured_run


def test_busy_port_is_a_clear_error(tmp_path, monkeypatch, capsys):
    def busy(self, **kw):
        raise OSError(98, "Address already in use")

    monkeypatch.setattr(dash.Dash, "run", busy)
    assert main(["dashboard", str(tmp_path)]) == 2
    assert "cannot serve on 127.0.0.1:8050: Address already in use" in capsys.readouterr().err
