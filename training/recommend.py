"""Which teacher checkpoint to distil from, from teacher-only signals, and how good that was.

**The rule** (``recommend``): rank the teacher's saved checkpoints (step 0 excluded) by their
distance to the *middle of the teacher's transition*, nearest first, ties to the earlier
step. The transition and its middle come from ``curriculens.curves.teacher_transition`` under
the task's rule (parity: the 10-90 % window of held-out accuracy, middle = where it crosses
half the rise; PCFG: the sharp loss drop); without a transition, the distance is to half of
training. The pick (rank 1) is the checkpoint a two-shot student starts from by default
(``training.experiment.two_shot_checkpoint``). It uses nothing but the teacher's own
held-out curve; the paper's (2, T) experiment found the mid-transition checkpoint best.

**What it cannot tell apart** (``indistinguishable``): the middle is known only to within its
*uncertainty*, the larger of half the gap between the evaluations either side of it (the
crossing lies somewhere between them; the larger adjacent gap when it falls on an evaluation)
and, under the loss-drop rule, the spread between the middles of ``detect_phases``' two fits.
The checkpoints whose distance to the middle is at most that uncertainty (and the pick itself)
are the candidates the rule cannot tell apart.

**The score** (``score_sweep``): with a two-shot sweep in the experiment (``curriculens grid
EXP --two-shot-steps all``), each student's speed is its steps to ``target`` held-out accuracy
(students that never reach it rank after all that do, by their final held-out loss). Per
student seed: the measured best checkpoint, the rank of the pick among the measured speeds
(1 = the pick was the fastest; ties share the better rank) and the pick's steps over the
best's.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from curriculens import constants as C
from curriculens.curves import RULE_LOSS_DROP, describe_rule, detect_phases, transition_rule
from curriculens.errors import CurriculensError
from models.checkpoint import list_checkpoints
from training.experiment import list_runs, read_metrics, read_run, steps_to_acc, teacher_transition_of


def _finite(v) -> bool:
    return isinstance(v, (int, float)) and math.isfinite(v)


def middle_uncertainty(eval_steps: Sequence[float], middle: float, middle_alt: float | None = None) -> float:
    """Steps by which the middle is uncertain: the larger of half the gap between the evaluations
    either side of ``middle`` (the larger adjacent gap when it falls on an evaluation; the end
    gap when it lies at or past an end) and ``|middle - middle_alt|``, the spread between two
    fits' middles (``None``/NaN: one fit)."""
    xs = sorted({float(s) for s in eval_steps})
    gaps = []
    for a, b in zip(xs, xs[1:], strict=False):
        if a <= middle <= b:
            gaps.append(b - a)
    if not gaps and len(xs) >= 2:
        gaps.append(xs[1] - xs[0] if middle < xs[0] else xs[-1] - xs[-2])
    spacing = 0.5 * max(gaps, default=0.0)
    spread = abs(middle - middle_alt) if middle_alt is not None and math.isfinite(middle_alt) else 0.0
    return max(spacing, spread)


def indistinguishable(candidates: Sequence[int], middle: float, uncertainty: float) -> list[int]:
    """The candidates within ``uncertainty`` steps of ``middle`` plus the pick (the nearest, ties
    to the earlier step), ascending: the checkpoints the rule cannot tell apart from its pick."""
    if not candidates:
        return []
    pick = min(candidates, key=lambda s: (abs(s - middle), s))
    return sorted({pick, *(s for s in candidates if abs(s - middle) <= uncertainty)})


def recommend(exp_dir: Path | str, teacher: str = "teacher") -> dict:
    """``{"rule", "transition", "target_step", "ranking": [{"rank", "step", "distance",
    "teacher_acc", "teacher_loss"}], "pick", "uncertainty", "indistinguishable"}`` for the
    teacher run ``EXP/runs/<teacher>`` (module docstring: ``uncertainty`` in steps,
    ``indistinguishable`` the steps the rule cannot tell apart from the pick)."""
    t_dir = Path(exp_dir) / C.RUNS_DIR / teacher
    if not (t_dir / C.RUN_CONFIG_FILE).is_file():
        raise CurriculensError(f"no teacher run {t_dir}")
    task_name = read_run(t_dir).config.task.name
    steps = [s for s, _ in list_checkpoints(t_dir)]
    if not steps:
        raise CurriculensError(f"teacher run {t_dir} has no checkpoints")
    tr = teacher_transition_of(t_dir, task_name)
    target = tr.mid_step if tr is not None else 0.5 * max(steps)
    candidates = [s for s in steps if s > 0] or steps
    rows = read_metrics(t_dir)
    by_step = {r["step"]: r for r in rows}
    metric = tr.metric if tr is not None else "eval_loss"
    eval_steps = [r["step"] for r in rows if _finite(r.get(metric))] or steps
    rule = transition_rule(task_name)
    alt = None
    if tr is not None and tr.rule == RULE_LOSS_DROP:  # the phase rule's second fit
        ph = detect_phases([r["step"] for r in rows], [r.get("eval_loss", math.nan) for r in rows])
        alt = None if ph is None else ph.mid_step_alt
    uncertainty = middle_uncertainty(eval_steps, target, alt)
    ranked = sorted(candidates, key=lambda s: (abs(s - target), s))
    ranking = [
        {
            "rank": i + 1,
            "step": s,
            "distance": abs(s - target),
            "teacher_acc": by_step.get(s, {}).get("eval_acc"),
            "teacher_loss": by_step.get(s, {}).get("eval_loss"),
        }
        for i, s in enumerate(ranked)
    ]
    return {
        "rule": "rank checkpoints by distance to the middle of the teacher's transition (nearest first). "
        + describe_rule(rule)
        + ("" if tr is not None else " No transition found: distance to half of training."),
        "transition": None
        if tr is None
        else {"start": tr.start, "mid_step": tr.mid_step, "end": tr.end, "metric": tr.metric},
        "target_step": target,
        "ranking": ranking,
        "pick": ranked[0],
        "uncertainty": uncertainty,
        "indistinguishable": indistinguishable(candidates, target, uncertainty),
    }


def sweep_speeds(exp_dir: Path | str, target: float = C.TARGET_ACC) -> dict[int, dict[int, tuple]]:
    """``{student seed: {two_shot_step: (steps to target or inf, final eval loss)}}`` of the
    finished two-shot students of an experiment."""
    out: dict[int, dict[int, tuple]] = {}
    for run in list_runs(exp_dir):
        if run.method != C.METHOD_TWO_SHOT or not run.done:
            continue
        rows = read_metrics(run.path)
        hit = steps_to_acc(rows, target)
        loss = rows[-1]["eval_loss"] if rows else math.inf
        out.setdefault(run.seed, {})[run.config.distill.two_shot_step] = (math.inf if hit is None else hit, loss)
    return out


def score_sweep(exp_dir: Path | str, pick: int, target: float = C.TARGET_ACC) -> dict | None:
    """How the pick did in the experiment's two-shot sweep (module docstring), per student seed;
    None without a sweep that includes the pick."""
    per_seed = []
    for seed, speeds in sorted(sweep_speeds(exp_dir, target).items()):
        if pick not in speeds or len(speeds) < 2:
            continue
        best_step = min(speeds, key=lambda s: (speeds[s], s))
        rank = 1 + sum(1 for s in speeds if speeds[s] < speeds[pick])
        best_steps, pick_steps = speeds[best_step][0], speeds[pick][0]
        per_seed.append(
            {
                "seed": seed,
                "n_checkpoints": len(speeds),
                "pick": pick,
                "pick_steps": None if math.isinf(pick_steps) else pick_steps,
                "best": best_step,
                "best_steps": None if math.isinf(best_steps) else best_steps,
                "rank": rank,
                "pick_over_best": (pick_steps / best_steps)
                if math.isfinite(pick_steps) and math.isfinite(best_steps)
                else None,
            }
        )
    if not per_seed:
        return None
    return {"target": target, "seeds": per_seed}
