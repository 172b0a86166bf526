"""Benchmark: the (2, T) two-shot sweep and how well ``curriculens recommend`` picks a checkpoint.

For each teacher seed: train the teacher, then one grid of two-shot students, one per saved
teacher checkpoint before the final one (T student steps on it, then the final teacher; student
seed = teacher seed). The recommendation (``training.recommend``, teacher-only) is scored
against the measured speeds: the rank of its pick (1 = fastest of the sweep; ties share the
better rank), its *regret* and the candidates it could not tell apart.

Regret, stated per seed by kind:
- ``steps``: the pick's steps to the target over the best checkpoint's (1.00 = the pick was as
  fast as the fastest);
- ``censored``: the pick never reached the target but another checkpoint did: a lower bound,
  the student budget over the best's steps;
- ``final``: no checkpoint reached the target: the best final held-out accuracy of the sweep
  over the pick's (1.00 = the pick ended best).

Tasks and sizes (``--task``, ``--size``):
- ``parity``: ``training.plans.PARITY_SIZES`` plus ``mid`` (below); target 95 % held-out
  accuracy (``curriculens.constants.TARGET_ACC``); students stop at it.
- ``pcfg``: a ``benchmarks.bench_pcfg_phenomenon`` setting (masked LM, cfg3b from level 2);
  ``cpu-sweep`` (below). Target: the teacher's held-out accuracy a quarter of the way down its
  loss drop (``bench_pcfg_phenomenon.thresholds``, q25: fixed from the teacher before any
  student runs; in that benchmark's ``cpu`` setting 500-step students reached q25 and mostly
  not q50); students stop at it.

    nice -n 10 python -m benchmarks.bench_two_shot_sweep [--task parity] [--size small] [--seeds 0 1 2]
    nice -n 10 python -m benchmarks.bench_two_shot_sweep --task pcfg --size cpu-sweep

Results: benchmarks/results/two_shot_sweep.{json,txt} (parity small, the first measurement),
otherwise two_shot_sweep_<task>_<size>.{json,txt}; rewritten after every seed, so a partial
run still reports. Runs resume and finished runs are reused (with the times of the invocation that
trained them), so seeds can run as parallel processes (``--seeds 1 --results /tmp/x``) and a
last ``--seeds 0 1 2`` invocation writes the combined report.
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
import math  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from dataclasses import asdict, dataclass, replace  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

from benchmarks.timing import load  # noqa: E402
from curriculens import constants as C  # noqa: E402
from curriculens.findings import t_interval  # noqa: E402
from curriculens.io import read_json, write_json  # noqa: E402
from models.checkpoint import list_checkpoints  # noqa: E402
from training.experiment import init_experiment, read_metrics, teacher_transition_of  # noqa: E402
from training.grid import train_grid  # noqa: E402
from training.gridspec import GridSpec, grid_configs  # noqa: E402
from training.loop import train_run  # noqa: E402
from training.plans import PARITY_SIZES, ParityDemoSize, parity_teacher_config  # noqa: E402
from training.recommend import recommend, score_sweep, sweep_speeds  # noqa: E402

# (40, 4): between the calibration's (30, 3), where the methods hardly differ, and small's (50, 4);
# its teacher reaches 99 % at ~5k steps, so a sweep of 31 checkpoints every 250 runs in minutes
PARITY_EXTRA = {
    "mid": ParityDemoSize(40, 4, 4000, 50, 8000, 16_000, 250, 250, 250, two_shot_T=1000),
}
PARITY = {**PARITY_SIZES, **PARITY_EXTRA}
# the phenomenon benchmark's `cpu` setting (800-step BERT teacher, 500-step students, T = 125)
# with a checkpoint every 100 instead of 25: 8 two-shot students per seed instead of 32 (what
# fits an hour of a shared 2-core machine; evaluations stay every 25)
PCFG_EXTRA = {"cpu-sweep": {"base": "cpu", "save_every": 100}}
TIMING_FILE = "sweep_timing.json"  # in each seed's experiment: the first (training) run's times


@dataclass(frozen=True)
class Sweep:
    """One seed's plan: the teacher config, the students (a function of the experiment directory,
    once the teacher is trained), the target accuracy (a function of the trained teacher's run
    directory; passed to the students), the student budget in steps, a one-line description and
    the config to save."""

    teacher: object
    students: object
    target: object
    budget: int
    describe: str
    config: dict


def parity_sweep(size_name: str, seed: int) -> Sweep:
    size = PARITY[size_name]
    teacher = parity_teacher_config(size, seed=seed, device="cpu")

    def students(exp: Path, target: float) -> list:
        spec = GridSpec(
            methods=(C.METHOD_TWO_SHOT,),
            seeds=(seed,),
            widths=(size.student_width,),
            two_shot_steps="all",
            two_shot_T=size.two_shot_T,
            steps=size.student_steps,
            save_every=size.student_save_every,
            eval_every=size.eval_every,
            stop_at_acc=C.TARGET_ACC,
            device="cpu",
        )
        return grid_configs(exp, spec)

    return Sweep(
        teacher,
        students,
        lambda t_dir: C.TARGET_ACC,
        size.student_steps,
        f"parity size {size_name} ({size.n}, {size.k}), teacher width {size.teacher_width} for "
        f"{size.teacher_steps} steps (a checkpoint every {size.save_every}), students width "
        f"{size.student_width}, T = {size.two_shot_T}, up to {size.student_steps} steps (stop at the "
        f"target); target {C.TARGET_ACC:.0%} held-out accuracy",
        asdict(size),
    )


def pcfg_sweep(setting_name: str, seed: int) -> Sweep:
    from benchmarks import bench_pcfg_phenomenon as ph
    from training.plans.pcfg import student_configs_for, teacher_config
    from training.tasks import build_task

    extra = PCFG_EXTRA.get(setting_name)
    setting = ph.SETTINGS[setting_name if extra is None else extra["base"]]
    if extra is not None:
        setting = replace(setting, **{k: v for k, v in extra.items() if k != "base"})
    preset = ph._preset(setting, "mlm")
    task = build_task(preset.task)
    teacher = teacher_config(preset, seed=seed, device="cpu", task=task)

    def students(exp: Path, target: float) -> list:
        t_dir = exp / C.RUNS_DIR / teacher.name
        steps = [s for s, _ in list_checkpoints(t_dir) if s < teacher.steps]
        cfgs = [
            student_configs_for(preset, exp, teacher, seeds=(seed,), methods=(C.METHOD_TWO_SHOT,), two_shot_step=s)[0]
            for s in steps
        ]
        return [replace(c, stop_at_acc=target) for c in cfgs]

    def target(t_dir: Path) -> float:
        return ph.thresholds(read_metrics(t_dir), teacher_transition_of(t_dir, "pcfg"))["q25"]["acc"]

    return Sweep(
        teacher,
        students,
        target,
        setting.student_steps,
        f"PCFG setting {setting_name} (masked LM, {setting.grammar} from level {setting.start_level}, batch "
        f"{setting.batch_size}, lr {setting.lr}): teacher {setting.teacher_size} for {setting.teacher_steps} "
        f"steps (a checkpoint every {setting.save_every}, evaluations every {setting.eval_every}), students "
        f"{setting.student_size} for up to {setting.student_steps} steps (stop at the target), T = "
        f"{setting.two_shot_T}; target the teacher's held-out accuracy a quarter of the way down its loss drop (q25)",
        asdict(setting),
    )


def regret(exp: Path, cfgs: list, score: dict, budget: int) -> tuple[float | None, str]:
    """(regret, kind): module docstring."""
    if score["pick_over_best"] is not None:
        return score["pick_over_best"], "steps"
    if score["best_steps"] is not None:
        return budget / score["best_steps"], "censored"
    finals = {c.distill.two_shot_step: read_metrics(exp / C.RUNS_DIR / c.name)[-1]["eval_acc"] for c in cfgs}
    return max(finals.values()) / finals[score["pick"]], "final"


def run_seed(task: str, size: str, seed: int, out: Path) -> dict:
    """Train (or reuse) one seed's teacher and sweep; its result row."""
    sweep = (parity_sweep if task == "parity" else pcfg_sweep)(size, seed)
    exp = out / size / f"seed{seed}"
    c0, w0 = time.process_time(), time.perf_counter()
    init_experiment(exp, sweep.teacher.task)
    train_run(sweep.teacher, exp / C.RUNS_DIR / "teacher")
    target = float(sweep.target(exp / C.RUNS_DIR / "teacher"))
    cfgs = sweep.students(exp, target)
    train_grid(cfgs, exp / C.RUNS_DIR)
    timing = {"cpu_s": time.process_time() - c0, "wall_s": time.perf_counter() - w0, "load": load()}
    if (exp / TIMING_FILE).is_file():  # trained by an earlier (or parallel) invocation: its times
        timing = read_json(exp / TIMING_FILE)
    else:
        write_json(exp / TIMING_FILE, timing)
    rec = recommend(exp)
    scored = score_sweep(exp, rec["pick"], target)
    speeds = sweep_speeds(exp, target)[seed]
    if scored is None:  # the pick is the final checkpoint: no two-shot student of it
        s = {"pick": rec["pick"], "rank": None, "n_checkpoints": len(speeds), "pick_steps": None}
        s.update(best=None, best_steps=None, pick_over_best=None)
        value, kind = None, "pick outside the sweep"
    else:
        s = scored["seeds"][0]
        value, kind = regret(exp, cfgs, s, sweep.budget)
    return {
        "seed": seed,
        "describe": sweep.describe,
        "config": sweep.config,
        "target_acc": target,
        "n_students": len(cfgs),
        **timing,
        "recommendation": rec,
        "score": s,
        "regret": value,
        "regret_kind": kind,
        "final_acc": {
            str(c.distill.two_shot_step): read_metrics(exp / C.RUNS_DIR / c.name)[-1]["eval_acc"] for c in cfgs
        },
        "speeds": {str(k): (None if math.isinf(v[0]) else v[0]) for k, v in speeds.items()},
    }


def seed_lines(r: dict) -> list[str]:
    s, rec = r["score"], r["recommendation"]
    tr = rec["transition"]
    mid = "none found" if tr is None else f"middle {tr['mid_step']:.0f} ({tr['metric']})"
    steps = ", ".join(
        f"{k}: {'-' if v is None else v}" for k, v in sorted(r["speeds"].items(), key=lambda kv: int(kv[0]))
    )
    accs = ", ".join(f"{k}: {v:.3f}" for k, v in sorted(r["final_acc"].items(), key=lambda kv: int(kv[0])))
    return [
        f"seed {r['seed']}: {r['n_students']} two-shot students, teacher + grid {r['wall_s']:.0f} s wall, "
        f"{r['cpu_s']:.0f} s CPU ({r['load']} at the end); target acc {r['target_acc']:.3f}; teacher "
        f"transition {mid}; pick {rec['pick']} ranks {s['rank']} of {s['n_checkpoints']} (steps "
        f"{s['pick_steps'] if s['pick_steps'] is not None else '-'}); best {s['best']} (steps "
        f"{s['best_steps'] if s['best_steps'] is not None else '-'}); regret {_fmt(r['regret'])} "
        f"({r['regret_kind']}); cannot tell apart (+-{rec['uncertainty']:.0f} steps): {rec['indistinguishable']}",
        f"  steps to target by teacher checkpoint: {steps}",
        f"  held-out acc at the student's last evaluation (at the target where it stopped) by teacher checkpoint: {accs}",
    ]


def _fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:.2f}"


def summary_lines(rows: list[dict]) -> list[str]:
    if not rows:
        return []
    ci = t_interval([r["regret"] for r in rows])
    kinds = sorted({r["regret_kind"] for r in rows})
    span = "" if ci.n < 2 else f", 95% t interval [{ci.lo:.2f}, {ci.hi:.2f}]"
    return [
        f"seeds {[r['seed'] for r in rows]}: pick ranks {[r['score']['rank'] for r in rows]} of "
        f"{[r['score']['n_checkpoints'] for r in rows]}; regret {[_fmt(r['regret']) for r in rows]} "
        f"(kinds {kinds}); mean regret {ci.estimate:.2f}{span} over n = {ci.n}"
    ]


def results_name(task: str, size: str) -> str:
    return "two_shot_sweep" if (task, size) == ("parity", "small") else f"two_shot_sweep_{task}_{size}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--task", choices=("parity", "pcfg"), default="parity")
    ap.add_argument("--size", default="small", help="parity: a PARITY size or mid; pcfg: a setting or cpu-sweep")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "runs" / "sweep"))
    ap.add_argument("--results", default=str(ROOT / "benchmarks" / "results"))
    args = ap.parse_args(argv)
    from benchmarks.bench_pcfg_phenomenon import SETTINGS

    known = PARITY if args.task == "parity" else {**SETTINGS, **PCFG_EXTRA}
    if args.size not in known:
        print(f"unknown {args.task} size {args.size!r} (one of {', '.join(known)})", file=sys.stderr)
        return 2
    torch.set_num_threads(1)
    out = Path(args.out) / args.task
    res = Path(args.results)
    name = results_name(args.task, args.size)
    started = load()
    rows: list[dict] = []
    for seed in args.seeds:
        rows.append(run_seed(args.task, args.size, seed, out))
        head = [
            f"two-shot sweep, {rows[0]['describe']}; 2 shared CPU cores, 1 torch thread, nice -n 10; each "
            "seed's wall and CPU time and load (at its end) are those of the invocation that trained it "
            f"(this report: {started})"
        ]
        text = head + [line for r in rows for line in seed_lines(r)] + summary_lines(rows)
        print("\n".join(seed_lines(rows[-1])), flush=True)
        res.mkdir(parents=True, exist_ok=True)
        write_json(res / f"{name}.json", {"task": args.task, "size": args.size, "seeds": rows})
        (res / f"{name}.txt").write_text("\n".join(text) + "\n")
    print("\n".join(summary_lines(rows)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
