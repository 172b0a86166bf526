"""``curriculens fetch`` against a fabricated hub on 127.0.0.1 (a small HTTP server speaking the
hub's refs / revision / resolve endpoints), then ``import`` of what it fetched."""

from __future__ import annotations

import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote

import pytest

from curriculens.errors import CurriculensError
from training.foreign.fetch import FetchConfig, fetch, needed_files
from training.foreign.revisions import resolve_revisions

REPO = "fake/tiny-lm"


def _revision_files(step: int, kind: str = "gpt2") -> dict[str, bytes]:
    """The files of revision ``step``: a saved tiny model + tokenizer + an extra file fetch must skip."""
    import tempfile

    from training.foreign.fixtures import make_model, make_tokenizer, save_checkpoint_dir

    tok = make_tokenizer(kind)
    with tempfile.TemporaryDirectory() as tmp:
        d = save_checkpoint_dir(Path(tmp), make_model(kind, len(tok), seed=step, n_layer=1), tok)
        files = {f.name: f.read_bytes() for f in d.iterdir() if f.is_file()}
    files["training_args.bin"] = b"not needed"  # a second .bin: fetch takes model.safetensors only
    files["README.md"] = b"# tiny"
    return files


class FakeHub:
    """Branches ``{name: {file: bytes}}`` served on a loopback port; ``requests`` logs each
    (method, path). Stops when the test ends (``shutdown``), its thread is a daemon."""

    def __init__(self, branches: dict[str, dict[str, bytes]]) -> None:
        self.branches = branches
        self.commits = {b: hashlib.sha1(f"{REPO}@{b}".encode()).hexdigest() for b in branches}
        self.requests: list[tuple[str, str]] = []
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):  # quiet
                pass

            def _send(self, code: int, body: bytes = b"", headers: dict | None = None, head=False):
                self.send_response(code)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if not head:
                    self.wfile.write(body)

            def _route(self, head: bool) -> None:
                path = unquote(self.path.split("?")[0])
                hub.requests.append((self.command, path))
                api = f"/api/models/{REPO}/"
                if path == api + "refs":
                    refs = [{"name": b, "ref": f"refs/heads/{b}", "targetCommit": hub.commits[b]} for b in hub.branches]
                    return self._send(200, json.dumps({"branches": refs, "tags": [], "converts": []}).encode())
                if path.startswith(api + "revision/"):
                    rev = path[len(api + "revision/") :]
                    if rev not in hub.branches:
                        return self._send(404, b"{}", {"X-Error-Code": "RevisionNotFound"})
                    sib = [{"rfilename": f} for f in hub.branches[rev]]
                    body = {"id": REPO, "modelId": REPO, "sha": hub.commits[rev], "siblings": sib, "private": False}
                    return self._send(200, json.dumps(body).encode())
                prefix = f"/{REPO}/resolve/"
                if path.startswith(prefix):
                    rev, _, name = path[len(prefix) :].partition("/")
                    data = hub.branches.get(rev, {}).get(name)
                    if data is None:
                        return self._send(404, b"", {"X-Error-Code": "EntryNotFound"})
                    etag = hashlib.sha256(data).hexdigest()
                    headers = {"X-Repo-Commit": hub.commits[rev], "ETag": f'"{etag}"'}
                    return self._send(200, data, headers, head=head)
                return self._send(404, b"", {"X-Error-Code": "RepoNotFound"})

            def do_GET(self):
                self._route(head=False)

            def do_HEAD(self):
                self._route(head=True)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def shutdown(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@pytest.fixture(scope="module")
def hub():
    branches = {"main": _revision_files(30)}
    for s in (0, 10, 20, 30):
        branches[f"step{s}"] = _revision_files(s)
    fake = FakeHub(branches)
    yield fake
    fake.shutdown()


@pytest.fixture(autouse=True)
def _online(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    import huggingface_hub.constants as hc

    monkeypatch.setattr(hc, "HF_HUB_OFFLINE", False)


def test_resolve_revisions_specs():
    branches = ["main", "step0", "step1000-tokens4B", "step2000-tokens8B", "step4000-tokens16B", "step8000-tokens32B"]
    assert resolve_revisions("all", branches) == branches[1:]
    assert resolve_revisions("2000,step0", branches) == ["step0", "step2000-tokens8B"]
    assert resolve_revisions("1000:4000", branches) == branches[2:5]
    assert resolve_revisions("0:8000:4000", branches) == ["step0", "step4000-tokens16B", "step8000-tokens32B"]
    assert resolve_revisions("log:3", branches) == ["step0", "step1000-tokens4B", "step8000-tokens32B"]  # log(1 + step)
    assert resolve_revisions("main", branches) == ["main"]
    for bad, msg in [
        ("3000", "no revision '3000'"),
        ("9000:9999", "no revision matches"),
        ("5:1", "bad revision range"),
    ]:
        with pytest.raises(CurriculensError, match=msg):
            resolve_revisions(bad, branches)
    for bad in ("", "log:1", "a,,b"):
        with pytest.raises(CurriculensError):
            FetchConfig(REPO, bad, "out")


def test_needed_files():
    files = ["config.json", "model.safetensors", "pytorch_model.bin", "tokenizer.json", "README.md", "sub/x.bin"]
    assert needed_files(files, "x") == ["config.json", "model.safetensors", "tokenizer.json"]
    with pytest.raises(CurriculensError, match="sharded"):
        needed_files(["config.json", "model.safetensors.index.json"], "x")
    with pytest.raises(CurriculensError, match="several weights"):
        needed_files(["config.json", "a.bin", "b.bin"], "x")


def test_fetch_then_import_and_resume(hub, tmp_path, one_thread):
    out = tmp_path / "hubcache"
    cfg = FetchConfig(REPO, "log:3", str(out), endpoint=hub.url, timeout_s=10)
    res = fetch(cfg)
    assert res.revisions == ["step0", "step10", "step30"]
    names = {d.split("/", 1)[1] for d in res.downloaded}
    assert "model.safetensors" in names and "config.json" in names and "tokenizer.json" in names
    assert not names & {"training_args.bin", "README.md"}  # only what import reads
    snap = res.repo_dir / "snapshots" / hub.commits["step10"]
    assert (snap / "model.safetensors").read_bytes() == hub.branches["step10"]["model.safetensors"]
    # a rerun asks only for the refs and file lists, downloads nothing
    hub.requests.clear()
    again = fetch(cfg)
    assert again.downloaded == [] and again.skipped == ["step0", "step10", "step30"]
    assert not [p for _, p in hub.requests if "/resolve/" in p]
    # a revision whose download was cut off is fetched again, the rest skipped
    (snap / "model.safetensors").unlink()
    third = fetch(cfg)
    assert third.skipped == ["step0", "step30"] and third.downloaded == ["step10/model.safetensors"]
    # import reads the fetched cache as it is
    from training.foreign.importer import ImportConfig, import_trajectory

    corpus = tmp_path / "c.txt"
    from training.foreign.fixtures import sample_text

    corpus.write_text(sample_text(40))
    result = import_trajectory(
        ImportConfig(src=str(res.repo_dir), out=str(tmp_path / "exp"), task={"name": "text", "corpus": str(corpus)})
    )
    assert result.steps == [0, 10, 30] and result.layout == "hub"


def test_fetch_offline_and_unreachable(hub, tmp_path, monkeypatch):
    out = tmp_path / "o"
    with pytest.raises(CurriculensError, match="no revision 'step99'"):
        fetch(FetchConfig(REPO, "step99", str(out), endpoint=hub.url))
    with pytest.raises(CurriculensError, match="no model repository other/model"):
        fetch(FetchConfig("other/model", "all", str(out), endpoint=hub.url))
    # a port nothing listens on: one line, nothing written
    dead = FakeHub({})
    url = dead.url
    dead.shutdown()
    with pytest.raises(CurriculensError, match="cannot reach"):
        fetch(FetchConfig(REPO, "all", str(out), endpoint=url, timeout_s=5))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(CurriculensError, match="offline"):
        fetch(FetchConfig(REPO, "all", str(out), endpoint=hub.url))
    assert not out.exists()


def test_cli_offline_exits_2(tmp_path, monkeypatch, capsys):
    from curriculens.cli import main

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert main(["fetch", REPO, "--revisions", "log:4", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "offline" in err[0] and "Traceback" not in err[0]
    assert main(["fetch", "not a repo", "--revisions", "all", "--out", str(tmp_path / "o")]) == 2
    assert not (tmp_path / "o").exists()
