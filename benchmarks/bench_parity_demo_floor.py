"""Benchmark: the parity demo stage by stage against its FLOP floor (issue 26 item 2).

Runs the three stages of ``curriculens demo`` (parity) in one process with one torch thread:
the teacher, the student grid (ce, one-shot, progressive, two-shot, curriculum-extraction as one
``train_grid``), and the probe sweep over every checkpoint; times each (CPU time of this
process, wall beside it) and prints it beside its floor:

    floor = the stage's matmul FLOPs / the single-thread float32 matmul peak

The peak is measured in the same process (best of 5 ``torch.mm`` of two 2048 x 2048 float32
matrices, one thread). FLOPs are 2·m·n·k per matrix product of the shapes the stage actually
ran (read back from the runs' metrics and configs), nothing else (bias adds, ReLU, loss,
optimizer, data, I/O are not counted, so the floor is a lower bound):

- a training step of an MLP on B inputs: forward 2·B·Σ a·b over its layers (a -> b), backward
  the weight gradients (the same again) plus the input gradients of every layer but the first
  (the input needs none); curriculum extraction's steps fit the hidden layer (no output layer),
  plus the target ``h_teacher @ P`` (2·B·W_t·W_s);
- an evaluation: a forward of the ``n_eval`` held-out inputs (every metrics row is one);
- the grid's teacher forwards: one forward of the step's batch per distinct teacher checkpoint
  the active students use at that step (``teacher_step_of``; outputs are shared), to the margin
  for a two-class teacher (``training.teachers``);
- the sweep, per checkpoint: the Fourier probe's forward of ``n_probe`` inputs (hidden layers
  and the two-class margin, ``class1_margin``) and its
  coefficient product (``n_probe`` x monomials), the linear probe's hidden-layer forward of
  ``n_linear`` inputs; the linear fits (256 features) are not counted.

    nice -n 10 python -m benchmarks.bench_parity_demo_floor                 # demo size, ~6 min CPU
    python -m benchmarks.bench_parity_demo_floor --size small --stages teacher,grid   # quicker
    python -m benchmarks.bench_parity_demo_floor --stages grid   # the teacher is trained first, untimed
    python -m benchmarks.bench_parity_demo_floor --repeats 3   # the median of 3 runs (this machine's speed drifts)

Results: ``benchmarks/results/parity_demo_floor.{txt,json}`` (``--tag`` appends a suffix).
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
import json  # noqa: E402
import shutil  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402

from benchmarks.timing import load, threads, timed  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
STAGES = ("teacher", "grid", "sweep")
PEAK_N = 2048


def measure_peak(repeats: int = 10) -> float:
    """Single-thread float32 matmul peak, FLOP/s: best of ``repeats`` 2048^3 ``torch.mm`` (on a
    shared machine a neighbour's load lowers it; the report re-measures it after every stage
    and divides by the highest)."""
    a, b = torch.randn(PEAK_N, PEAK_N), torch.randn(PEAK_N, PEAK_N)
    out = torch.empty(PEAK_N, PEAK_N)
    torch.mm(a, b, out=out)  # warm
    best = min(timed(lambda: torch.mm(a, b, out=out)).cpu for _ in range(repeats))
    return 2 * PEAK_N**3 / best


def gemm_rates(size_name: str, peak: float) -> list[dict]:
    """Achieved speed of the demo's main matrix products at their own shapes (one thread,
    median of interleaved repeats after a warm-up): where the floor's "at peak" assumption
    does not hold. Shapes ``(m, k, n)`` of ``[m, k] @ [k, n]`` as the engine runs them."""
    import statistics

    from training.plans import PARITY_SIZES

    s = PARITY_SIZES[size_name]
    b, n, wt, ws = s.batch_size, s.n, s.teacher_width, s.student_width
    cases = {
        "teacher layer 1 forward  x @ W1.T (+b1)": (lambda: torch.randn(b, n), lambda: torch.randn(wt, n).t(), True),
        "teacher layer 1 grad     dpre.T @ x": (lambda: torch.randn(b, wt).t(), lambda: torch.randn(b, n), False),
        "teacher output forward   h @ W2.T (+b2)": (lambda: torch.randn(b, wt), lambda: torch.randn(2, wt).t(), True),
        "extraction target        h_t @ P": (lambda: torch.randn(b, wt), lambda: torch.randn(wt, ws), False),
        "teacher eval forward     x @ W1.T (1024 rows)": (
            lambda: torch.randn(1024, n),
            lambda: torch.randn(wt, n).t(),
            True,
        ),
    }
    out = []
    for name, (fa, fb, bias) in cases.items():
        a, bm = fa(), fb()
        c = torch.randn(bm.shape[1])
        res = torch.empty(a.shape[0], bm.shape[1])
        fn = (
            (lambda a=a, bm=bm, c=c, res=res: torch.addmm(c, a, bm, out=res))
            if bias
            else (lambda a=a, bm=bm, res=res: torch.mm(a, bm, out=res))
        )
        reps = max(20, int(2e9 / (2 * a.shape[0] * a.shape[1] * bm.shape[1])))
        fn()
        times = [timed(lambda fn=fn, reps=reps: [fn() for _ in range(reps)]).cpu / reps for _ in range(5)]
        t = statistics.median(times)
        flops = 2 * a.shape[0] * a.shape[1] * bm.shape[1]
        out.append(
            {"name": name, "shape": list((a.shape[0], a.shape[1], bm.shape[1])), "s": t, "flops_per_s": flops / t}
        )
    return out


def layer_dims(model: dict) -> list[tuple[int, int]]:
    """``[(a, b)]`` of an MLP config dict's linear layers, input to output."""
    dims = [model["d_in"]] + [model["width"]] * model["depth"] + [model["n_classes"]]
    return list(zip(dims[:-1], dims[1:], strict=True))


def fwd_flops(model: dict, hidden_only: bool = False) -> int:
    """Matmul FLOPs of one input's forward (``hidden_only``: without the output layer)."""
    layers = layer_dims(model)[:-1] if hidden_only else layer_dims(model)
    return sum(2 * a * b for a, b in layers)


def train_flops(model: dict, hidden_only: bool = False) -> int:
    """Matmul FLOPs of one input's forward + backward (weight grads, input grads past layer 0)."""
    layers = layer_dims(model)[:-1] if hidden_only else layer_dims(model)
    return sum(2 * a * b for a, b in layers) * 2 + sum(2 * a * b for a, b in layers[1:])


def _rows(run_path: Path) -> list[dict]:
    from training.experiment import read_metrics

    return read_metrics(run_path)


def teacher_flops(exp: Path) -> dict:
    from training.experiment import list_runs

    t = next(r for r in list_runs(exp) if r.role == "teacher")
    cfg = t.config.to_dict()
    rows = _rows(t.path)
    steps = rows[-1]["step"]
    train = steps * cfg["batch_size"] * train_flops(cfg["model"])
    evals = len(rows) * cfg["task"]["n_eval"] * fwd_flops(cfg["model"])
    return {"steps": steps, "evaluations": len(rows), "train": train, "eval": evals, "total": train + evals}


def grid_flops(exp: Path) -> dict:
    from models.checkpoint import list_checkpoints
    from training.engine import _distils, _extracting
    from training.experiment import list_runs
    from training.schedule import teacher_step_of

    runs = list_runs(exp)
    teacher = next(r for r in runs if r.role == "teacher")
    t_model = teacher.config.to_dict()["model"]
    t_steps = [s for s, _ in list_checkpoints(teacher.path)]
    t_save = teacher.config.checkpoints.save_every
    students = [r for r in runs if r.role == "student"]
    train = evals = teach = target = 0
    ends, per_run = {}, {}
    for r in students:
        cfg = r.config
        m = cfg.to_dict()["model"]
        rows = _rows(r.path)
        end = rows[-1]["step"]
        ends[r.name] = end
        ext = cfg.distill.extract_steps if _extracting(cfg, 0) else 0
        ext = min(ext, end)
        b = cfg.batch_size
        f = (end - ext) * b * train_flops(m) + ext * b * (
            train_flops(m, hidden_only=True) + 2 * t_model["width"] * m["width"]
        )
        target += ext * b * 2 * t_model["width"] * m["width"]
        train += f
        evals += len(rows) * cfg.task.n_eval * fwd_flops(m)
        per_run[r.name] = {"steps": end, "evaluations": len(rows)}
    b = students[0].config.batch_size
    n_fwd = 0
    for step in range(max(ends.values())):
        used = set()
        for r in students:
            if step < ends[r.name] and _distils(r.config):
                used.add(teacher_step_of(r.config.distill, step, t_steps, t_save))
        n_fwd += len(used)
    teach = n_fwd * b * margin_fwd_flops(t_model)  # two classes: the margin (training.teachers)
    total = train + evals + teach
    return {
        "runs": per_run,
        "teacher_forwards": n_fwd,
        "train": train - target,
        "extraction_targets": target,
        "eval": evals,
        "teacher": teach,
        "total": total,
    }


def margin_fwd_flops(model: dict) -> int:
    """Matmul FLOPs of one input's forward where only the margin is needed (the Fourier probe,
    a two-class teacher's targets in the grid): the hidden layers, then for two classes the
    margin's matrix-vector product (``ParityMLP.class1_margin``, 2·W), else the output layer."""
    if model["n_classes"] == 2:
        return fwd_flops(model, hidden_only=True) + 2 * model["width"]
    return fwd_flops(model)


def sweep_flops(exp: Path) -> dict:
    from models.checkpoint import list_checkpoints
    from probes.tasks.parity.common import ParityProbeOptions
    from probes.tasks.parity.fourier import expected_rows
    from training.experiment import list_runs

    opts = ParityProbeOptions()
    fourier = linear = coeff = 0
    n_ckpt = 0
    for r in list_runs(exp):
        cfg = r.config
        m = cfg.to_dict()["model"]
        n_monomials = sum(expected_rows(cfg.task.n, cfg.task.k).values())
        for _ in list_checkpoints(r.path):
            n_ckpt += 1
            fourier += opts.n_probe * margin_fwd_flops(m)
            coeff += 2 * opts.n_probe * n_monomials
            linear += opts.n_linear * fwd_flops(m, hidden_only=True)
    return {
        "checkpoints": n_ckpt,
        "fourier_forward": fourier,
        "fourier_coefficients": coeff,
        "linear_forward": linear,
        "total": fourier + coeff + linear,
    }


def run_stage(stage: str, exp: Path, size_name: str) -> tuple[float, float]:
    """(CPU s, wall s) of one stage on ``exp``. The grid and the sweep need the teacher: where
    ``exp`` has no finished one (``--stages grid,sweep``), it is trained first, untimed (the
    grid's time once included it: 117-119 s where the grid alone took 67-80 s)."""
    from curriculens import constants as C
    from training.plans import demo_plan, run_plan

    teacher, students_for = demo_plan("parity", size_name, out=str(exp), seeds=range(1), device="cpu")
    if stage != "teacher" and not (exp / C.RUNS_DIR / teacher.name / C.DONE_FILE).is_file():
        run_plan(exp, teacher, lambda e, t: [], grid=True)
    if stage == "teacher":
        t = timed(lambda: run_plan(exp, teacher, lambda e, t: [], grid=True))
    elif stage == "grid":
        t = timed(lambda: run_plan(exp, teacher, students_for, grid=True))
    else:
        from probes.sweep import SweepConfig, run_sweep

        t = timed(lambda: run_sweep(exp, SweepConfig(device="cpu"), progress=False))
    return t.cpu, t.wall


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", default="demo", help="parity demo size (tiny | small | demo; default demo)")
    ap.add_argument("--stages", default=",".join(STAGES), help="comma-separated subset of teacher,grid,sweep")
    ap.add_argument("--out", help="experiment directory (default: a temporary one, removed)")
    ap.add_argument("--tag", default="", help="suffix of the result files (e.g. the code measured)")
    ap.add_argument("--repeats", type=int, default=1, help="run the stages this many times, each in a fresh directory")
    ap.add_argument("--no-save", action="store_true", help="print only")
    args = ap.parse_args(argv)
    stages = [s for s in args.stages.split(",") if s]
    if any(s not in STAGES for s in stages):
        print(f"error: --stages takes {','.join(STAGES)}", file=sys.stderr)
        return 2
    tmp = None if args.out else tempfile.mkdtemp(prefix="parity_floor_")
    exp = Path(args.out or tmp) / "exp"
    lines: list[str] = []

    def say(s: str) -> None:
        print(s, flush=True)
        lines.append(s)

    import training

    report: dict = {"size": args.size, "stages": {}, "code": str(Path(training.__file__).resolve().parents[1])}
    try:
        with threads(1):
            peak = measure_peak()
            report["peak_flops"] = peak
            report["load_start"] = load()
            say(f"parity demo floor, size {args.size}; one torch thread; CPU time of this process")
            say(f"machine: {load()}; float32 matmul peak {peak / 1e9:.1f} GFLOP/s (2048^3 torch.mm, best of 10)")
            rates = gemm_rates(args.size, peak)
            report["gemm_rates"] = rates
            counters = {"teacher": teacher_flops, "grid": grid_flops, "sweep": sweep_flops}
            for stage in STAGES:  # warm-up, untimed: the tiny size imports and first-calls everything
                run_stage(stage, exp.with_name("warm"), "tiny")
            peaks = [peak]
            for r in range(args.repeats):
                exp_r = exp if r == 0 else exp.with_name(f"exp{r}")
                for stage in stages:
                    cpu, wall = run_stage(stage, exp_r, args.size)
                    flops = counters[stage](exp_r)
                    st = report["stages"].setdefault(stage, {"runs": []})
                    st["runs"].append({"cpu_s": cpu, "wall_s": wall, "load_after": load()})
                    st["flops"] = flops
                    print(f"  (run {r + 1}, {stage}: CPU {cpu:.1f} s, wall {wall:.1f} s; {load()})", flush=True)
                    peaks.append(measure_peak())
                    st["runs"][-1]["peak_around"] = (peaks[-2] + peaks[-1]) / 2  # the machine's speed then
            for st in report["stages"].values():  # the median run (the lower middle of an even count)
                runs = sorted(st["runs"], key=lambda x: x["cpu_s"])
                mid = runs[(len(runs) - 1) // 2]
                st.update(cpu_s=mid["cpu_s"], wall_s=mid["wall_s"], load_after=mid["load_after"])
            peak = max(peaks)
            report["peaks_flops"], report["peak_flops"] = peaks, peak
            say(
                f"peak measured before and after each stage: {', '.join(f'{p / 1e9:.1f}' for p in peaks)} GFLOP/s; "
                f"floors use the highest, {peak / 1e9:.1f}"
            )
            say("matrix products at the demo's shapes (m, k, n), one thread, median of 5, measured first:")
            for r in rates:
                m, k, n = r["shape"]
                say(
                    f"  {r['name']:<46} ({m}, {k}, {n}) {r['s'] * 1e3:7.3f} ms  {r['flops_per_s'] / 1e9:5.1f} GFLOP/s "
                    f"= {r['flops_per_s'] / peak:4.0%} of peak"
                )
            say("stages (CPU time of this process; floor = counted matmul FLOPs / peak):")
            for stage in stages:
                st = report["stages"][stage]
                cpu, wall, flops = st["cpu_s"], st["wall_s"], st["flops"]
                floor = st["floor_s"] = flops["total"] / peak
                say(
                    f"  {stage:<8} CPU {cpu:7.1f} s (wall {wall:6.1f} s)  floor {floor:6.1f} s "
                    f"({flops['total'] / 1e12:.2f} TFLOP)  ratio {cpu / floor:5.2f}x   [after it: {st['load_after']}]"
                )
                if len(st["runs"]) > 1:
                    say(
                        "           median of "
                        + f"{len(st['runs'])} runs; every run: "
                        + ", ".join(f"{x['cpu_s']:.1f} s ({x['cpu_s'] / floor:.2f}x)" for x in st["runs"])
                    )
                around = [x["cpu_s"] * x["peak_around"] / flops["total"] for x in st["runs"]]
                st["ratio_at_peak_around"] = sorted(around)[(len(around) - 1) // 2]
                say(
                    "           against the peak measured just before and after each run (the machine's speed "
                    f"then): {', '.join(f'{r:.2f}x' for r in around)}"
                )
                detail = {k: v for k, v in flops.items() if k not in ("total", "runs")}
                say(
                    "           "
                    + ", ".join(f"{k} {v / 1e9:,.0f} GFLOP" if v > 1e6 else f"{k} {v:,}" for k, v in detail.items())
                )
                if "runs" in flops:
                    say("           " + ", ".join(f"{k} {v['steps']:,} steps" for k, v in flops["runs"].items()))
            tot_cpu = sum(s["cpu_s"] for s in report["stages"].values())
            tot_floor = sum(s["floor_s"] for s in report["stages"].values())
            say(f"  total    CPU {tot_cpu:7.1f} s  floor {tot_floor:6.1f} s  ratio {tot_cpu / tot_floor:5.2f}x")
            report["load_end"] = load()
            say(f"load at the end: {load()}")
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    if not args.no_save:
        stem = ROOT / "benchmarks" / "results" / f"parity_demo_floor{('_' + args.tag) if args.tag else ''}"
        stem.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        stem.with_suffix(".txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
        print(f"wrote {stem}.txt/.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
