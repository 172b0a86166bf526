"""Named PCFG setups (task, teacher and student models, optimizer, budgets) and the demo plan.

===============  ==========================================================================
preset           what it is
===============  ==========================================================================
``cpu-demo``     a generated 5-level grammar (~40 tokens), small BERTs; the ``demo`` command
``cpu-tiny``     the same, smaller and shorter: the end-to-end test
``cpu-small``    benchmark scale on 2 CPU cores: BERT 4 layers x 4 heads, hidden 64, lr 3e-3,
                 batch 32, 2000 steps (calibration notes); use with cfg3b from level 1
                 (``grammar=PATH``, ``start_level=1``: plateau, then a sharp drop at ~1k steps)
``paper-bert``   paper section 5: BERT teacher 4 x 32 heads (hidden 256), student 4 x 8 heads
                 (hidden 64), AdamW (0.9, 0.95), lr 5e-3, 6% warmup + cosine, batch 512,
                 8000 steps, checkpoints every 200; needs cfg3b (``grammar=PATH``); GPU
``paper-gpt2``   the same with GPT-2 and next-token loss on every position (paper section 6
                 scores only span ends; this package scores every next token); GPU
===============  ==========================================================================

Distillation follows the paper's PCFG scripts: pure distillation (alpha 0) from the teacher's
argmax (tau 1e-20 -> hard labels). Progressive uses the official masked-LM trainer's rule
(``training.schedule``, rule ``pcfg``): at student step g, the largest teacher checkpoint at or
below speed x (1 + floor(g / R)) x R, R = the preset's ``refresh`` (paper: 1000, with
checkpoints every 200), speed 1, or teacher_steps / student_steps when the student's budget is
shorter (so it still walks the whole teacher trajectory; the paper's appendix uses speed 2).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from pathlib import Path

from curriculens import constants as C
from curriculens.errors import CurriculensError
from training.config import CheckpointConfig, OptimConfig, RunConfig
from training.tasks.pcfg import SIZES, model_dict  # noqa: F401 - the sizes presets name

log = logging.getLogger(__name__)

PAPER_TAU = 1e-20
STUDENT_METHODS = C.PAPER_METHODS


@dataclass(frozen=True)
class PCFGPreset:
    """One named setup. ``task`` is a PCFG task dict; ``teacher``/``student`` are model sizes
    (keys of ``SIZES``) turned into model dicts by ``models_for``.

    ``eval_log``: the teacher also evaluates at that many log-spaced steps (``CheckpointConfig``).
    ``refresh``: progressive's R (student steps between teacher re-selections; 0 = ``save_every``).
    ``two_shot_frac``: the two-shot first stage uses the teacher checkpoint nearest this fraction
    of the teacher's steps (a placeholder until the teacher's drop is known; see
    ``refine_two_shot``) for ``two_shot_T_frac`` of the student's steps.
    """

    name: str
    description: str
    task: dict
    teacher: str
    student: str
    optim: OptimConfig
    steps: int
    student_steps: int
    batch_size: int
    save_every: int
    eval_every: int = 0
    log_early: int = 0
    eval_log: int = 0
    two_shot_frac: float = 0.5
    two_shot_T_frac: float = 0.5
    refresh: int = 0
    probe_options: dict = field(default_factory=dict)

    def models_for(self, task) -> tuple[dict, dict]:
        """(teacher, student) model dicts sized for a built ``PCFGTask``."""
        o, v, n, pad = task.cfg.objective, task.vocab_size, task.seq_len, task.model_pad_id
        return model_dict(o, self.teacher, v, n, pad), model_dict(o, self.student, v, n, pad)


_CPU_OPTIM = OptimConfig(
    name=C.OPTIM_ADAMW,
    lr=3e-3,
    betas=(0.9, 0.95),
    weight_decay=0.1,
    schedule=C.SCHEDULE_COSINE,
    warmup_frac=0.06,
    grad_clip=1.0,
)
_PAPER_OPTIM = OptimConfig(
    name=C.OPTIM_ADAMW, lr=5e-3, betas=(0.9, 0.95), weight_decay=0.0, schedule=C.SCHEDULE_COSINE, warmup_frac=0.06
)
_SMALL_PROBES = {"n_sentences": 64, "max_tokens": 3000, "ngram_sentences": 32}

PRESETS: dict[str, PCFGPreset] = {
    "cpu-tiny": PCFGPreset(
        name="cpu-tiny",
        description="end-to-end test size: generated 4-level grammar (~15 tokens), 1-2 layer BERTs, seconds",
        task={"name": "pcfg", "gen_levels": 4, "gen_seed": 1, "n_eval": 64, "objective": "mlm"},
        teacher="tiny-teacher",
        student="tiny-student",
        optim=replace(_CPU_OPTIM, lr=1e-2),
        steps=60,
        student_steps=60,
        batch_size=16,
        save_every=20,
        eval_every=10,
        probe_options={"n_sentences": 24, "max_tokens": 400, "ngram_sentences": 8, "offsets": 2},
    ),
    "cpu-demo": PCFGPreset(
        name="cpu-demo",
        description="CPU demo: generated 5-level grammar (~40 tokens), 2-layer BERTs, about 2-3 minutes",
        task={"name": "pcfg", "gen_levels": 5, "gen_seed": 0, "n_eval": 256, "objective": "mlm"},
        teacher="demo-teacher",
        student="demo-student",
        optim=replace(_CPU_OPTIM, lr=5e-3),
        steps=600,
        student_steps=400,
        batch_size=32,
        save_every=100,
        eval_every=50,
        probe_options={"n_sentences": 64, "max_tokens": 2000, "ngram_sentences": 32, "offsets": 4},
    ),
    "cpu-small": PCFGPreset(
        name="cpu-small",
        description="benchmark scale (2 CPU cores): BERT 4L x 4H hidden 64, batch 32, 2000 steps; "
        "use cfg3b from level 1 (grammar=PATH, start_level=1)",
        task={"name": "pcfg", "gen_levels": 6, "gen_seed": 0, "n_eval": 512, "objective": "mlm"},
        teacher="cpu-teacher",
        student="cpu-student",
        optim=_CPU_OPTIM,
        steps=2000,
        student_steps=2000,
        batch_size=32,
        save_every=100,
        eval_every=50,
        probe_options=_SMALL_PROBES,
    ),
    "paper-bert": PCFGPreset(
        name="paper-bert",
        description="paper section 5 (GPU): BERT teacher 4L x 32H (256), student 4L x 8H (64), batch 512, cfg3b",
        task={"name": "pcfg", "grammar": "", "n_eval": 4096, "objective": "mlm", "eval_batch": 256},
        teacher="teacher",
        student="student",
        optim=_PAPER_OPTIM,
        steps=8000,
        student_steps=8000,
        batch_size=512,
        save_every=200,
        eval_every=100,
        two_shot_frac=0.125,  # C1 = 1k of an 8k-step teacher (paper figure 3)
        two_shot_T_frac=0.25,
        refresh=1000,  # distil.sh: refresh_frequency 1000, teacher saved every 200
        probe_options={"n_sentences": 512, "max_tokens": 20000, "ngram_sentences": 1024, "ngram_stride": 30},
    ),
    "paper-gpt2": PCFGPreset(
        name="paper-gpt2",
        description="paper section 6 (GPU): GPT-2 teacher 4L x 32H (256), student 4L x 8H (64), next-token, cfg3b",
        task={"name": "pcfg", "grammar": "", "n_eval": 4096, "objective": "next", "eval_batch": 256},
        teacher="teacher",
        student="student",
        optim=_PAPER_OPTIM,
        steps=8000,
        student_steps=8000,
        batch_size=512,
        save_every=200,
        eval_every=100,
        two_shot_frac=0.125,
        two_shot_T_frac=0.25,
        refresh=200,  # PCFG_autoregressive comment: the paper refreshed every 200 (speed 2 there)
        probe_options={"n_sentences": 512, "max_tokens": 20000, "ngram_sentences": 1024, "ngram_stride": 30},
    ),
}
_NEEDS_GRAMMAR = ("paper-bert", "paper-gpt2")


def get_preset(name: str, grammar: str | None = None, **task_overrides) -> PCFGPreset:
    """The preset ``name``, with its task's grammar path and any task fields replaced.

    ``grammar``: a bundled grammar's name (``cfg3b``; kept as the name) or a grammar JSON path
    (made absolute, so runs do not depend on the cwd).
    """
    from training.data.pcfg import BUNDLED_GRAMMARS, grammar_path

    if name not in PRESETS:
        raise CurriculensError(f"unknown PCFG preset {name!r} (one of {', '.join(PRESETS)})")
    p = PRESETS[name]
    task = dict(p.task)
    if grammar:
        path = grammar_path(grammar)  # GrammarError (a CurriculensError) when neither
        task["grammar"] = (
            str(grammar)
            if not Path(grammar).expanduser().is_file() and grammar in BUNDLED_GRAMMARS
            else str(path.resolve())
        )
    elif name in _NEEDS_GRAMMAR:
        raise CurriculensError(f"preset {name} needs a grammar (the paper's: cfg3b): pass --grammar cfg3b or a file")
    task.update(task_overrides)
    return replace(p, task=task)


def teacher_config(preset: PCFGPreset, seed: int = 0, device: str = C.DEVICE_AUTO, task=None) -> RunConfig:
    """The teacher run (named ``teacher``) of ``preset``; ``task``: ``preset``'s built task, if
    the caller has it (building one loads the grammar)."""
    from training.tasks import build_task

    teacher_model, _ = preset.models_for(task or build_task(preset.task))
    return RunConfig(
        name="teacher",
        role=C.ROLE_TEACHER,
        task=dict(preset.task),
        model=teacher_model,
        optim=preset.optim,
        checkpoints=CheckpointConfig(
            save_every=preset.save_every,
            eval_every=preset.eval_every,
            log_early=preset.log_early,
            eval_log=preset.eval_log,
        ),
        steps=preset.steps,
        batch_size=preset.batch_size,
        seed=seed,
        device=device,
    )


def detect_teacher_phases(teacher_dir: Path | str):
    """``curriculens.curves.Phases`` of a teacher run's held-out loss (None: too few evaluations)."""
    from curriculens.curves import detect_phases
    from training.experiment import read_metrics

    rows = [r for r in read_metrics(teacher_dir) if r.get("eval_loss") is not None]
    return detect_phases([r["step"] for r in rows], [r["eval_loss"] for r in rows])


def student_configs_for(
    preset: PCFGPreset,
    exp_dir: Path | str,
    teacher: RunConfig,
    seeds=(0,),
    methods=STUDENT_METHODS,
    two_shot_step: int | None = None,
    task=None,
) -> list[RunConfig]:
    """Students of a trained teacher (``exp_dir/runs/<teacher.name>``): one per (seed, method),
    distilling the teacher's argmax (tau 1e-20, alpha 0, the paper's PCFG setting).

    ``two_shot_step`` None = ``training.experiment.two_shot_checkpoint`` of the teacher run;
    ``task``: ``preset``'s built task, if the caller has it."""
    from training.experiment import two_shot_checkpoint
    from training.plans.base import student_configs
    from training.tasks import build_task

    _, student_model = preset.models_for(task or build_task(preset.task))
    if two_shot_step is None and C.METHOD_TWO_SHOT in methods:
        two_shot_step = two_shot_checkpoint(
            Path(exp_dir) / C.RUNS_DIR / teacher.name, teacher.task.name, preset.two_shot_frac
        )
    students = student_configs(
        teacher,
        model=student_model,
        steps=preset.student_steps,
        save_every=preset.save_every,
        eval_every=preset.eval_every,
        seeds=tuple(seeds),
        methods=tuple(methods),
        two_shot_step=-1 if two_shot_step is None else int(two_shot_step),
        two_shot_T=max(1, int(round(preset.two_shot_T_frac * preset.student_steps))),
        tau=PAPER_TAU,
        exp_dir=Path(exp_dir),
    )
    prog = {
        "speed": progressive_speed(preset),
        "progressive_rule": "pcfg",
        "interval": preset.refresh or preset.save_every,
    }
    return [
        s.replace(distill=replace(s.distill, **prog)) if s.distill.method == C.METHOD_PROGRESSIVE else s
        for s in students
    ]


def progressive_speed(preset: PCFGPreset) -> float:
    """Teacher steps per student step for progressive distillation: 1 (the paper) when the
    student trains at least as long as the teacher, else teacher_steps / student_steps, so
    the student walks the whole teacher trajectory within its budget."""
    return max(1.0, preset.steps / preset.student_steps)


DEMO_PRESETS = {"demo": "cpu-demo", "tiny": "cpu-tiny"}


def pcfg_demo_plan(
    out: Path | str = "",
    grammar_path: str | None = None,
    size: str = "demo",
    seeds=(0,),
    device: str = C.DEVICE_AUTO,
):
    """The ``curriculens demo --task pcfg`` plan: ``(teacher RunConfig, students_for)`` with
    ``students_for(exp_dir, teacher) -> [RunConfig]`` (ce / one-shot / progressive / two-shot
    per seed; two-shot from the middle of the teacher's detected drop), the shape
    ``training.plans.run_plan`` takes.

    Args:
        out: the experiment directory (unused: run directories are relative to it).
        grammar_path: a grammar JSON; None = the preset's generated grammar.
        size: ``demo`` (preset cpu-demo, minutes on 2 cores) or ``tiny`` (cpu-tiny, seconds).
    """
    if size not in DEMO_PRESETS:
        raise CurriculensError(f"unknown pcfg demo size {size!r} (one of {', '.join(DEMO_PRESETS)})")
    from training.tasks import build_task

    preset = get_preset(DEMO_PRESETS[size], grammar=grammar_path)
    task = build_task(preset.task)  # once, for both model sizes
    teacher = teacher_config(preset, device=device, task=task)

    def students_for(exp_dir, t):
        return student_configs_for(preset, exp_dir, t, seeds=tuple(seeds), task=task)

    return teacher, students_for


def demo_probe_options(size: str = "demo") -> dict:
    """Probe options (sizes) matching a demo preset, for the sweep config."""
    return dict(PRESETS[DEMO_PRESETS.get(size, size)].probe_options)
