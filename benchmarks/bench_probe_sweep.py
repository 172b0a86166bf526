"""Probe sweep speed: new vs previous implementation, probe fitting vs scikit-learn, extraction
vs a bare forward, all measured in the same run.

    python -m benchmarks.bench_probe_sweep [--exp DIR] [--runs teacher,ce-s0] [--skip-sweep] [--n-probe 100000,20000]
    python -m benchmarks.bench_probe_sweep --render benchmarks/results/probe_sweep.json   # reprint a saved run
    python -m benchmarks.bench_probe_sweep --skip-sweep --fit-device cuda --out benchmarks/results/probe_fit_gpu.json  # on a GPU
    (``benchmarks/gpu_checks.sh`` runs it with ``--skip-extraction`` on a carried teacher checkpoint)

1. Sweep: units/s of the demo experiment's sweep (``curriculens demo --no-probe`` is run into
   ``benchmarks/runs/sweep_demo`` when ``--exp`` is absent), the previous implementation (the
   ``probes`` package of commit ``PREVIOUS``, from git, against the current other packages) vs
   the current one, each in a fresh subprocess with one torch thread and the same options; then
   every row of the two tables is compared. Once per ``--n-probe`` count (Fourier inputs per
   checkpoint; default the paper's 100,000 and the previous default 20,000), each with its
   *forward floor* (``forward_floor``): the float32 forwards over the probe inputs alone, which
   no exact sweep can skip, so old / floor is the best speedup any probe code could reach.
2. Fitting: ``fit_linear_probes`` (torch backend) vs scikit-learn one probe at a time (one
   BLAS thread), on 2048 x 256 Gaussian features with 60 planted targets and their shuffled
   controls, and on real activations of the demo teacher's middle checkpoint; held-out accuracy
   of both. ``--fit-device cuda`` fits the torch side on the GPU (the issue's 100x goal there;
   scikit-learn stays on one CPU thread), timed with the device synchronised.
3. Extraction: ``ActivationExtractor`` vs a bare forward that keeps the same hidden states
   (MLP teacher: its probed 256 columns; GPT-2 / BERT: every residual-stream site).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import torch

from benchmarks.timing import interleaved

REPO = Path(__file__).resolve().parents[1]
PREVIOUS = "6a0d20b"  # the last commit with the previous sweep (``--previous`` picks another)
FIT_REPEATS = 3
DEFAULT_EXP = REPO / "benchmarks" / "runs" / "sweep_demo"
# Run before the previous (``PREVIOUS``) ``probes`` package is imported: what it expects of the
# current packages (shared with tests/probes/test_sweep_reuse.py); not for other ``--previous``.
PREVIOUS_SHIM = """
import dataclasses, json, sys
import curriculens.device
sys.modules.setdefault("training.device", curriculens.device)  # moved there after the previous sweep
import training.experiment as _exp
from curriculens.config import to_dict as _to_dict


class _DictConfig:  # it reads a run config's task and model as dicts (typed configs since)
    def __init__(self, cfg):
        self._cfg = cfg

    def __getattr__(self, name):
        value = getattr(self._cfg, name)
        # as JSON holds them (lists, not tuples): it compares them with experiment.json's dict
        return json.loads(json.dumps(_to_dict(value))) if name in ("task", "model") else value


def _dict_run(run):
    return dataclasses.replace(run, config=_DictConfig(run.config))


_read_run, _list_runs = _exp.read_run, _exp.list_runs
_exp.read_run = lambda path: _dict_run(_read_run(path))
_exp.list_runs = lambda path: [_dict_run(r) for r in _list_runs(path)]
"""
_SWEEP = """
import json, sys, time, torch
torch.set_num_threads(1)
from probes.sweep import SweepConfig, run_sweep
t0, c0 = time.perf_counter(), time.process_time()
res = run_sweep(sys.argv[1], SweepConfig(device="cpu", runs=tuple(json.loads(sys.argv[2])), options=json.loads(sys.argv[3])))
print(json.dumps({"wall_s": time.perf_counter() - t0, "cpu_s": time.process_time() - c0, "units": res.n_done, "rows": res.n_rows, "failed": res.n_failed}))
"""


def _sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def _copy(src: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("results.sqlite*", "probe_config.json", "failed.jsonl"))
    return dst


def _sweep(exp: Path, runs: list[str], options: dict, pythonpath: str | None, shim: bool = True) -> dict:
    env = dict(os.environ, OMP_WAIT_POLICY="PASSIVE")
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    # cwd outside the repository: ``python -c`` puts the cwd first on sys.path, before PYTHONPATH
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            (PREVIOUS_SHIM if pythonpath and shim else "")
            + _SWEEP
            + "import probes; print(probes.__file__, file=sys.stderr)",
            str(exp),
            json.dumps(runs),
            json.dumps(options),
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        cwd=exp.parent,
    )
    print(f"  ran {out.stderr.strip().splitlines()[-1]}", flush=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _table(exp: Path):
    from curriculens import constants as C
    from probes.store import ResultsStore

    with ResultsStore(exp / C.RESULTS_DB, readonly=True) as store:
        return store.query()


def sweep_options(n_probe: int | None = None) -> dict:
    """The options both sweeps run with: ``n_probe`` Fourier inputs (default: today's, the
    paper's 100,000; the previous implementation's default was 20,000, so default options
    would not be the same config); every other option at its (shared) default."""
    from probes.tasks.parity.common import ParityProbeOptions

    return {"n_probe": n_probe or ParityProbeOptions().n_probe}


def forward_floor(exp: Path, runs: list[str], n_probe: int) -> dict:
    """The part of any exact sweep that no probe code can remove: every checkpoint's float32
    forward over the Fourier probe's ``n_probe`` inputs (``models.registry.output_logits``, the
    bare layers, no hooks, in chunks of ``C.DEFAULT_PROBE_BATCH``), timed alone in a fresh
    process with one thread; loading and everything else excluded."""
    code = """
import json, sys, time, torch
torch.set_num_threads(1)
from curriculens import constants as C
from models.checkpoint import list_checkpoints, load_checkpoint
from models.registry import output_logits
from training.experiment import list_runs
from training.data.parity import sample_pm1
runs, n_probe = json.loads(sys.argv[2]), int(sys.argv[3])
total, n = 0.0, 0
for run in list_runs(sys.argv[1]):
    if runs and run.name not in runs:
        continue
    for step, path in list_checkpoints(run.path):
        model, cfg, _ = load_checkpoint(path)
        x = sample_pm1(n_probe, cfg.d_in, torch.Generator().manual_seed(0))
        t0, work = time.process_time(), []
        with torch.inference_mode():
            for i in range(0, n_probe, C.DEFAULT_PROBE_BATCH):
                output_logits(model, x[i : i + C.DEFAULT_PROBE_BATCH], None, work)
        total += time.process_time() - t0
        n += 1
print(json.dumps({"forward_s": total, "checkpoints": n}))
"""
    out = subprocess.run(
        [sys.executable, "-c", code, str(exp), json.dumps(runs), str(n_probe)],
        env=dict(os.environ, OMP_WAIT_POLICY="PASSIVE"),
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def bench_sweep(exp: Path, runs: list[str], n_probe: int | None = None, previous: str = PREVIOUS) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        blob = subprocess.run(
            ["git", "-C", str(REPO), "archive", previous, "probes"], capture_output=True, check=True
        ).stdout
        with tarfile.open(fileobj=io.BytesIO(blob)) as tar:
            tar.extractall(tmp / "old_src", filter="data")
        options = sweep_options(n_probe)
        old = _sweep(_copy(exp, tmp / "old"), runs, options, str(tmp / "old_src"), shim=previous == PREVIOUS)
        new = _sweep(_copy(exp, tmp / "new"), runs, options, None)
        a, b = _table(tmp / "old"), _table(tmp / "new")
    key = ["run", "step", "probe", "feature", "site", "metric"]
    m = a.merge(b, on=key, suffixes=("_old", "_new"), how="outer", indicator=True)
    both = m[m["_merge"] == "both"]
    diff = (both.value_old - both.value_new).abs()
    linear = both.extra_old.fillna("").str.contains('"n_train"')
    out = {
        "options": options,
        "old": old,
        "new": new,
        "clock": "cpu (each sweep in its own process)",
        "old_units_per_s": old["units"] / old["cpu_s"],
        "new_units_per_s": new["units"] / new["cpu_s"],
        "rows_only_in_one": int((m["_merge"] != "both").sum()),
        "max_diff_non_linear": float(diff[~linear].max()) if (~linear).any() else 0.0,
        "max_diff_linear": float(diff[linear].max()) if linear.any() else 0.0,
        "linear_rows_changed": int((diff[linear] > 0).sum()),
        "linear_rows_over_0.02": int((diff[linear] > 0.02 + 1e-9).sum()),
        "linear_rows": int(linear.sum()),
    }
    out["speedup"] = out["new_units_per_s"] / out["old_units_per_s"]
    out["floor"] = forward_floor(exp, runs, options["n_probe"])
    f = out["floor"]["forward_s"]
    out["best_possible_speedup"] = old["cpu_s"] / f
    out["speedup_beyond_floor"] = (old["cpu_s"] - f) / max(new["cpu_s"] - f, 1e-9)
    return out


def _fit_pair(x: torch.Tensor, y: torch.Tensor, max_features: int = 0, device: str = "cpu") -> dict:
    """torch's batched fit vs scikit-learn one probe at a time (lbfgs, its fastest solver for
    this shape), the same objective and stopping test (``tol`` on the largest gradient
    component), both imported and warmed up, one thread each (torch and BLAS), CPU time of
    interleaved repeats (``benchmarks.timing``; on CUDA, wall time with the device synchronised)."""
    from threadpoolctl import threadpool_limits

    from probes.linear import LinearProbeConfig, fit_linear_probes, prepare_targets

    cfg = LinearProbeConfig(max_features=max_features, device=device)
    ref_cfg = LinearProbeConfig(backend="sklearn", max_features=max_features)
    targets = prepare_targets(y, x.shape[1], cfg)

    def torch_side():
        _sync()
        out = fit_linear_probes(x, targets, cfg)
        _sync()
        return out

    with threadpool_limits(1):
        fit_linear_probes(x[:64], y[:64], ref_cfg)  # imports scikit-learn, warms it
        cmp = interleaved(
            {"torch": torch_side, "sklearn": lambda: fit_linear_probes(x, targets, ref_cfg)}, repeats=FIT_REPEATS
        )
    clock = cmp.wall if device == "cuda" else cmp.cpu
    t_new, t_ref = statistics.median(clock["torch"]), statistics.median(clock["sklearn"])
    new, ref = cmp.values["torch"], cmp.values["sklearn"]
    acc = lambda fits: sum(f.test_acc for f in fits) / len(fits)  # noqa: E731
    return {
        "device": device,
        "clock": "wall, synchronised" if device == "cuda" else "cpu",
        "repeats": FIT_REPEATS,
        "load": cmp.load_end,
        "probes": 2 * len(new),
        "features": new[0].n_features,
        "torch_s": t_new,
        "sklearn_s": t_ref,
        "ratio": t_ref / t_new,
        "test_acc_torch": acc(new),
        "test_acc_sklearn": acc(ref),
        "max_test_acc_diff": max(abs(a.test_acc - b.test_acc) for a, b in zip(new, ref, strict=True)),
        "max_control_acc_diff": max(abs(a.control_acc - b.control_acc) for a, b in zip(new, ref, strict=True)),
        "mean_newton_iter": sum(f.n_iter + f.control_n_iter for f in new) / (2 * len(new)),
    }


def fit_checkpoint(teacher: Path) -> tuple[int, Path]:
    """(step, directory) of the teacher checkpoint whose activations the fit is measured on: the
    middle one of the run's (mid-training); ``scripts/device_prepare.sh`` carries this one."""
    from models.checkpoint import list_checkpoints

    ckpts = list_checkpoints(teacher)
    return ckpts[len(ckpts) // 2]


def bench_fit(exp: Path, device: str = "cpu") -> dict:
    g = torch.Generator().manual_seed(0)
    n, d, m = 2048, 256, 60
    x = torch.randn(n, d, generator=g)
    w = torch.randn(d, m, generator=g) * torch.linspace(0.05, 1.0, m)
    y = ((x @ w) / d**0.5 + 0.5 * torch.randn(n, m, generator=g) > 0).long()
    out = {"gaussian": _fit_pair(x, y, device=device)}
    teacher = exp / "runs" / "teacher"
    if teacher.is_dir():
        from models.checkpoint import load_checkpoint
        from probes.activations import extract_activations
        from probes.tasks.parity.maths import monomial_set, monomial_values
        from training.data.parity import sample_pm1
        from training.experiment import read_run
        from training.tasks import build_task

        run = read_run(teacher)
        task = build_task(run.config.task)
        step, ckpt = fit_checkpoint(teacher)
        model, cfg, _ = load_checkpoint(ckpt)
        xs = sample_pm1(2048, cfg.d_in, torch.Generator().manual_seed(1))
        acts = extract_activations(model, cfg, xs, ["blocks.0.hook_post"])["blocks.0.hook_post"]
        mons = monomial_set(cfg.d_in, task.support, range(1, len(task.support)), n_off=10, seed=0)
        labels = (monomial_values(xs, mons) < 0).long()
        # the sweep's protocol: a seeded 256-neuron subset of the wide layer (max_features)
        from probes.tasks.parity.common import ParityProbeOptions

        width = acts.shape[1]
        fit = _fit_pair(acts, labels, ParityProbeOptions().max_features, device)
        out["teacher_activations"] = {"step": step, "width": width, **fit}
    return out


def bench_extraction(exp: Path) -> dict:
    from models.configs import BertConfig, GPT2Config
    from models.registry import build_model
    from probes.activations import ActivationExtractor

    out = {}
    teacher = exp / "runs" / "teacher"
    if teacher.is_dir():
        from models.checkpoint import list_checkpoints, load_checkpoint

        model, cfg, _ = load_checkpoint(list_checkpoints(teacher)[-1][1])
        x = (1 - 2 * torch.randint(0, 2, (2048, cfg.d_in), generator=torch.Generator().manual_seed(0))).float()
        cols = torch.randperm(cfg.width, generator=torch.Generator().manual_seed(1))[:256].sort().values
        ex = ActivationExtractor(model, cfg)

        w, b = model.blocks[0].fc.weight[cols], model.blocks[0].fc.bias[cols]

        def bare():  # the fastest exact way to these activations: only the probed columns, one call
            with torch.inference_mode():
                return torch.relu(torch.addmm(b, x, w.t()))

        def fast():
            return ex.extract(x, ["blocks.0.hook_post"], columns={"blocks.0.hook_post": cols})["blocks.0.hook_post"]

        cmp = interleaved({"bare": bare, "extract": fast}, repeats=5)
        assert torch.allclose(cmp.values["bare"], cmp.values["extract"], atol=1e-5)
        tb, tf = cmp.median("bare"), cmp.median("extract")
        out["mlp_teacher"] = {
            "bare_s": tb,
            "extract_s": tf,
            "ratio": tf / tb,
            "inputs": 2048,
            "width": cfg.width,
            "baseline": "a forward of the probed 256 columns only",
            "clock": "cpu, median of 5 interleaved",
        }
    for name, cfg in (
        ("gpt2", GPT2Config(vocab_size=64, n_positions=256, n_layer=4, n_head=4, head_dim=16)),
        (
            "bert",
            BertConfig(
                vocab_size=64,
                hidden_size=64,
                num_hidden_layers=4,
                num_attention_heads=4,
                intermediate_size=256,
                max_position_embeddings=256,
            ),
        ),
    ):
        torch.manual_seed(0)
        model = build_model(cfg).eval()
        tokens = torch.randint(1, 64, (64, 200), generator=torch.Generator().manual_seed(0))
        mask = torch.ones_like(tokens)
        n_layers = getattr(cfg, "n_layer", None) or cfg.num_hidden_layers
        sites = ["blocks.0.hook_in"] + [f"blocks.{i}.hook_out" for i in range(n_layers)]
        ex = ActivationExtractor(model, cfg)

        def bare(model=model, tokens=tokens, mask=mask):
            with torch.inference_mode():
                for i in range(0, 64, 32):
                    model(tokens[i : i + 32], attention_mask=mask[i : i + 32], output_hidden_states=True)

        def fast(ex=ex, tokens=tokens, sites=sites, mask=mask):
            ex.extract(tokens, sites, batch_size=32, position="all", kwargs={"attention_mask": mask})

        cmp = interleaved({"bare": bare, "extract": fast}, repeats=5)
        tb, tf = cmp.median("bare"), cmp.median("extract")
        out[name] = {
            "bare_hidden_states_s": tb,
            "extract_s": tf,
            "ratio": tf / tb,
            "sequences": 64,
            "tokens": 200,
            "clock": "cpu, median of 5 interleaved",
        }
    return out


def _start_text(result: dict) -> str:
    return f"machine: {result['cpus']} CPUs, load average {result['load_start'][0]:.1f} at start; one torch thread per process"


def _sweep_text(s: dict) -> str:
    f = s["floor"]["forward_s"]
    clock = "cpu_s" if "cpu_s" in s["old"] else "wall_s"  # results saved before CPU time: wall
    return (
        f"\n== sweep ({s['new']['units']} units, {s['new']['rows']} rows)\n"
        f"options {s['options']} (both sides)\n"
        f"previous {s['old'][clock]:.1f} s = {s['old_units_per_s']:.2f} units/s; "
        f"new {s['new'][clock]:.1f} s = {s['new_units_per_s']:.2f} units/s ({clock}); speedup {s['speedup']:.2f}x\n"
        f"rows only in one table: {s['rows_only_in_one']}; max |diff| non-linear rows {s['max_diff_non_linear']:.2e}; "
        f"linear rows {s['max_diff_linear']:.4f} ({s['linear_rows_changed']} of {s['linear_rows']} changed, "
        f"{s['linear_rows_over_0.02']} by more than 0.02)\n"
        f"floor: the float32 forwards alone over {s['floor']['checkpoints']} checkpoints take "
        f"{f:.1f} s, so no exact sweep beats {s['best_possible_speedup']:.2f}x here; "
        f"beyond that floor: previous {s['old'][clock] - f:.1f} s, "
        f"new {s['new'][clock] - f:.1f} s: {s['speedup_beyond_floor']:.2f}x"
    )


def _fit_text(name: str, r: dict) -> str:
    return (
        f"\n== fitting, {name}: {r['probes']} probes on {r['features']} features; torch "
        f"({r.get('device', 'cpu')}) {r['torch_s']:.3f} s, "
        f"scikit-learn (lbfgs) one by one {r['sklearn_s']:.3f} s: {r['ratio']:.1f}x "
        f"({r.get('clock', 'wall')}, median of {r.get('repeats', 1)}, both warm, one thread each); held-out acc "
        f"{r['test_acc_torch']:.4f} vs {r['test_acc_sklearn']:.4f} (max per-probe diff "
        f"{r['max_test_acc_diff']:.4f}, controls {r['max_control_acc_diff']:.4f}); "
        f"{r['mean_newton_iter']:.1f} Newton iterations per probe"
    )


def _extraction_text(name: str, r: dict) -> str:
    base = r.get("bare_s", r.get("bare_hidden_states_s"))
    what = r.get("baseline", "bare forward")
    return f"\n== extraction, {name}: {what} {base:.3f} s, extraction {r['extract_s']:.3f} s: {r['ratio']:.2f}x ({r.get('clock', 'wall')})"


def _end_text(result: dict) -> str:
    return (
        f"\nload average {result['load_end'][0]:.1f} at the end (shared machine: both sides of each ratio ran under it)"
    )


def render(result: dict) -> str:
    """The printed report of a whole result dict, so a saved ``probe_sweep.json`` re-renders as
    ``probe_sweep.txt`` with --render (``main`` prints the same pieces as they are measured)."""
    return "\n".join(
        [_start_text(result)]
        + [_sweep_text(s) for s in result.get("sweeps", [])]
        + [_fit_text(k, r) for k, r in result.get("fit", {}).items()]
        + [_extraction_text(k, r) for k, r in result.get("extraction", {}).items()]
        + [_end_text(result)]
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--exp", type=Path, default=DEFAULT_EXP)
    ap.add_argument("--runs", default="", help="comma-separated runs to sweep (default all)")
    ap.add_argument("--skip-sweep", action="store_true")
    ap.add_argument(
        "--previous", default=PREVIOUS, help=f"the commit whose probes package is the baseline (default {PREVIOUS})"
    )
    ap.add_argument(
        "--n-probe",
        default="100000,20000",
        help="comma-separated Fourier input counts: one old-vs-new sweep comparison each (default: the "
        "paper's 100,000 and the previous default 20,000)",
    )
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "probe_sweep.json")
    ap.add_argument("--render", type=Path, help="only print the report of a saved result .json")
    ap.add_argument("--skip-extraction", action="store_true", help="leave out the extraction comparison (CPU only)")
    ap.add_argument(
        "--fit-device",
        choices=("cpu", "cuda"),
        default="cpu",
        help="where the torch side of the fitting comparison runs (default cpu; scikit-learn always one CPU thread)",
    )
    args = ap.parse_args()
    if args.fit_device == "cuda" and not torch.cuda.is_available():
        sys.exit("error: --fit-device cuda but torch sees no CUDA device")
    if args.render:
        print(render(json.loads(args.render.read_text())))
        return
    torch.set_num_threads(1)
    if not args.exp.is_dir():
        print(f"training the demo experiment into {args.exp} (curriculens demo --no-probe) ...", flush=True)
        subprocess.run(
            [sys.executable, "-m", "curriculens.cli", "-q", "demo", "--out", str(args.exp), "--no-probe"], check=True
        )
    result: dict = {
        "load_start": os.getloadavg(),
        "cpus": os.cpu_count(),
        "previous": args.previous,
        "exp": str(args.exp),
    }
    print(_start_text(result), flush=True)
    runs = [r for r in args.runs.split(",") if r]
    if not args.skip_sweep:
        result["sweeps"] = []
        for n_probe in [int(v) for v in args.n_probe.split(",") if v]:
            result["sweeps"].append(bench_sweep(args.exp, runs, n_probe, args.previous))
            print(_sweep_text(result["sweeps"][-1]), flush=True)
    result["fit"] = bench_fit(args.exp, args.fit_device)
    print("\n".join(_fit_text(k, r) for k, r in result["fit"].items()), flush=True)
    if not args.skip_extraction:
        result["extraction"] = bench_extraction(args.exp)
        print("\n".join(_extraction_text(k, r) for k, r in result["extraction"].items()), flush=True)
    result["load_end"] = os.getloadavg()
    print(_end_text(result))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, default=str) + "\n")


if __name__ == "__main__":
    main()
