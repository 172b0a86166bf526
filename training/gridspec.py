"""A grid specification (``grid.json``) and its expansion into student RunConfigs.

A spec lists values per dimension; the grid is their product, restricted to the dimensions
that apply to each method: ``taus`` / ``alphas`` to the distilling methods (not ``ce``),
``speeds`` to ``progressive``, ``two_shot_steps`` to ``two-shot``, ``extract_steps`` to
``curriculum-extraction``. Everything not given follows the teacher run (task, optimizer,
batch size, steps, checkpoint schedule, amp); students are made by
``training.experiment.student_config``, the one student factory. A dimension with more than one value is named in the
run names (``progressive-w100-x2-s0``); see ``training.experiment.student_run_name``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from curriculens import constants as C
from curriculens.config import cli, csv_of, dataclass_default, from_dict, to_dict
from curriculens.errors import CurriculensError
from curriculens.io import read_json
from training.config import CheckpointConfig, DistillConfig, RunConfig
from training.experiment import read_run, student_config, two_shot_checkpoint


@dataclass(frozen=True)
class GridSpec:
    """One grid of students of one teacher.

    Args:
        methods: student methods (``C.METHODS``).
        seeds: initialisation seeds (one student per seed and setting).
        widths: MLP student widths; empty = the task's default student model.
        model: a full student model config dict instead of ``widths`` (Transformers).
        taus, alphas: distillation temperature and label weight (``training.losses``).
        speeds: progressive speed factors.
        two_shot_steps: teacher checkpoint steps for ``two-shot``; ``"all"`` = every checkpoint
            before the final one (the (2, T) sweep); ``"mid"`` = the teacher's mid-transition
            checkpoint (``training.experiment.two_shot_checkpoint``).
        two_shot_T: student steps on the intermediate checkpoint.
        extract_steps: ``curriculum-extraction``: steps on the hidden-layer projection.
        extract_seed: seed of that projection.
        steps, batch_size, save_every, eval_every: 0 = the teacher's.
        stream_seed: the seed of the shared training data stream; None = ``seeds[0]``.
        stop_at_acc: each student ends at its first evaluation at or above this accuracy.
        optim: fields that override the teacher's optimizer config (e.g. ``{"lr": 0.1}``).
        teacher: the teacher run's name in ``EXP/runs/``.
        device: ``auto`` | ``cpu`` | ``cuda``.
    """

    methods: tuple = field(
        default=(C.METHOD_CE, C.METHOD_ONE_SHOT, C.METHOD_PROGRESSIVE),
        metadata=cli(f"comma-separated: {','.join(C.METHODS)}", parse=csv_of(str)),
    )
    seeds: tuple = field(default=(0,), metadata=cli("comma-separated initialisation seeds", parse=csv_of(int)))
    widths: tuple = field(
        default=(),
        metadata=cli(
            "comma-separated MLP student widths", aliases=("--width",), parse=csv_of(int), default="the task's student"
        ),
    )
    model: dict = field(default_factory=dict)
    taus: tuple = field(
        default=(dataclass_default(DistillConfig, "tau"),),
        metadata=cli("comma-separated teacher temperatures", aliases=("--tau",), parse=csv_of(float)),
    )
    alphas: tuple = field(
        default=(dataclass_default(DistillConfig, "alpha"),),
        metadata=cli("comma-separated label-CE weights", aliases=("--alpha",), parse=csv_of(float)),
    )
    speeds: tuple = field(
        default=(dataclass_default(DistillConfig, "speed"),),
        metadata=cli("comma-separated progressive speed factors", aliases=("--speed",), parse=csv_of(float)),
    )
    two_shot_steps: tuple | str = field(
        default=(),
        metadata=cli(
            "two-shot teacher checkpoints: comma-separated steps, 'all' (the (2, T) sweep) or 'mid'",
            parse=lambda text: text.strip() if text.strip() in ("all", "mid") else csv_of(int)(text),
            default="",
        ),
    )
    two_shot_T: int = field(
        default=0, metadata=cli("two-shot: student steps on the intermediate checkpoint", default="")
    )
    extract_steps: int = field(
        default=0,
        metadata=cli("curriculum-extraction: steps fitting the teacher's hidden-layer projection", default=""),
    )
    extract_seed: int = field(default=0, metadata=cli("curriculum-extraction: seed of the random projection"))
    steps: int = field(default=0, metadata=cli("student steps", default="the teacher's"))
    batch_size: int = field(default=0, metadata=cli("examples per step", default="the teacher's"))
    save_every: int = field(default=0, metadata=cli("checkpoint interval", default="the teacher's"))
    eval_every: int = field(default=0, metadata=cli("evaluation interval", default="the teacher's"))
    stream_seed: int | None = field(
        default=None, metadata=cli("seed of the shared training data stream", default="the first seed")
    )
    stop_at_acc: float = field(
        default=0.0, metadata=cli("end each student at its first evaluation at or above this accuracy", default="")
    )
    optim: dict = field(default_factory=dict)
    teacher: str = field(default="teacher", metadata=cli("the teacher run's name in EXP/runs/"))
    device: str = C.DEVICE_AUTO

    def __post_init__(self) -> None:
        for m in self.methods:
            if m not in C.METHODS:
                raise CurriculensError(f"unknown method {m!r} in the grid (one of {', '.join(C.METHODS)})")
        if not self.methods or not self.seeds:
            raise CurriculensError("a grid needs at least one method and one seed")
        for name in ("seeds", "widths", "taus", "alphas", "speeds"):
            vals = getattr(self, name)
            if len(set(vals)) != len(vals):
                raise CurriculensError(f"grid {name} has repeated values: {list(vals)}")
        if any(w <= 0 for w in self.widths):
            raise CurriculensError("grid widths must be positive")
        if C.METHOD_TWO_SHOT in self.methods and (not self.two_shot_steps or self.two_shot_T <= 0):
            raise CurriculensError(
                "two-shot in a grid needs two_shot_steps (a list, 'all' or 'mid') and two_shot_T > 0"
            )
        if isinstance(self.two_shot_steps, str) and self.two_shot_steps not in ("all", "mid"):
            raise CurriculensError(
                f"two_shot_steps must be a list of steps, 'all' or 'mid', not {self.two_shot_steps!r}"
            )
        if C.METHOD_CURRICULUM_EXTRACTION in self.methods and self.extract_steps <= 0:
            raise CurriculensError("curriculum-extraction in a grid needs extract_steps > 0")
        if min(self.steps, self.batch_size, self.save_every, self.eval_every) < 0:
            raise CurriculensError("steps, batch_size, save_every and eval_every must be >= 0")
        if self.device not in C.DEVICES:
            raise CurriculensError(f"unknown device {self.device!r}")

    @classmethod
    def from_dict(cls, data: dict) -> GridSpec:
        data = dict(data)
        for key in ("methods", "seeds", "widths", "taus", "alphas", "speeds"):
            if key in data and not isinstance(data[key], (list, tuple)):
                data[key] = [data[key]]
        if isinstance(data.get("two_shot_steps"), int):
            data["two_shot_steps"] = [data["two_shot_steps"]]
        spec = from_dict(cls, data, where="grid spec")  # validated on construction
        if isinstance(spec.two_shot_steps, list):
            spec = replace(spec, two_shot_steps=tuple(spec.two_shot_steps))
        return spec


def _num(v: float) -> str:
    return f"{v:g}"


def grid_configs(exp_dir: Path | str, spec: GridSpec) -> list[RunConfig]:
    """The student RunConfigs of ``spec`` for the teacher ``EXP/runs/<spec.teacher>``
    (validated; nothing is written)."""
    exp_dir = Path(exp_dir)
    t_dir = exp_dir / C.RUNS_DIR / spec.teacher
    if not (t_dir / C.RUN_CONFIG_FILE).is_file():
        raise CurriculensError(f"no teacher run {t_dir}; train one with `curriculens train-teacher --out {exp_dir}`")
    if not (t_dir / C.DONE_FILE).is_file():
        raise CurriculensError(f"teacher run {t_dir} has not finished; rerun train-teacher to finish it")
    teacher = read_run(t_dir).config
    from models.checkpoint import list_checkpoints  # torch: imported here, so flag help stays light

    t_steps = [s for s, _ in list_checkpoints(t_dir)]

    if spec.model:
        models = [(spec.model, "")]
    else:
        t_model = teacher.model
        if spec.widths:
            if t_model.kind != "mlp":
                raise CurriculensError("grid widths apply to MLP students; give a full student 'model' for other kinds")
            base = to_dict(t_model)  # the teacher's model as its config.json holds it
            models = [({**base, "width": w}, f"-w{w}" if len(spec.widths) > 1 else "") for w in spec.widths]
        else:  # the task's student: building the task (a PCFG grammar) only when it is needed
            from training.tasks import build_task

            models = [(build_task(teacher.task).default_model("student"), "")]
    if spec.two_shot_steps == "all":
        two_shot = t_steps[:-1]
    elif spec.two_shot_steps == "mid":
        two_shot = [two_shot_checkpoint(t_dir, teacher.task.name)]
    else:
        two_shot = list(spec.two_shot_steps)
        missing = [s for s in two_shot if s not in t_steps]
        if missing:
            raise CurriculensError(
                f"the teacher has no checkpoint at step(s) {missing} (it has {t_steps[0]}..{t_steps[-1]})"
            )
    optim = replace(teacher.optim, **spec.optim) if spec.optim else teacher.optim
    ckpts = CheckpointConfig(
        save_every=spec.save_every or teacher.checkpoints.save_every,
        eval_every=spec.eval_every if spec.eval_every else teacher.checkpoints.eval_every,
    )
    stream = spec.stream_seed if spec.stream_seed is not None else spec.seeds[0]
    run_fields = {
        id(model): dict(
            model=model,
            optim=optim,
            checkpoints=ckpts,
            steps=spec.steps or teacher.steps,
            batch_size=spec.batch_size or teacher.batch_size,
            device=spec.device,
            stop_at_acc=spec.stop_at_acc,
        )
        for model, _ in models
    }
    out = []
    for seed in spec.seeds:
        for model, wtag in models:
            for method in spec.methods:
                distilling = method != C.METHOD_CE
                taus = spec.taus if distilling else (dataclass_default(DistillConfig, "tau"),)
                alphas = spec.alphas if distilling else (dataclass_default(DistillConfig, "alpha"),)
                speeds = spec.speeds if method == C.METHOD_PROGRESSIVE else (dataclass_default(DistillConfig, "speed"),)
                points = two_shot if method == C.METHOD_TWO_SHOT else [-1]
                for tau in taus:
                    for alpha in alphas:
                        for speed in speeds:
                            for ts in points:
                                tags = wtag
                                tags += f"-tau{_num(tau)}" if distilling and len(spec.taus) > 1 else ""
                                tags += f"-a{_num(alpha)}" if distilling and len(spec.alphas) > 1 else ""
                                tags += (
                                    f"-x{_num(speed)}"
                                    if method == C.METHOD_PROGRESSIVE and len(spec.speeds) > 1
                                    else ""
                                )
                                cfg = student_config(
                                    teacher,
                                    t_dir,
                                    method,
                                    seed,
                                    tags=tags,
                                    run_fields=run_fields[id(model)],
                                    alpha=alpha,
                                    tau=tau,
                                    speed=speed,
                                    two_shot_step=ts,
                                    two_shot_T=spec.two_shot_T,
                                    extract_steps=spec.extract_steps,
                                    extract_seed=spec.extract_seed,
                                )
                                # every student of a grid records the stream it shares
                                out.append(cfg.replace(stream_seed=None if stream == seed else stream))
    return out


def read_spec(path: Path | str) -> GridSpec:
    path = Path(path)
    if not path.is_file():
        raise CurriculensError(f"grid spec not found: {path}")
    try:
        data = read_json(path)
    except ValueError as exc:
        raise CurriculensError(f"grid spec {path} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise CurriculensError(f"grid spec {path} must be a JSON object")
    return GridSpec.from_dict(data)
