"""The ``model`` probe: the checkpoint's own held-out loss and accuracy (any task).

Rows: feature ``task``, site ``output``, metrics ``accuracy`` (top-1 on the task's fixed
held-out set, a fraction) and ``loss`` (mean cross-entropy in nats over scored positions),
plus any numeric metric the task's ``extra_eval`` adds (named as the task names it, without an
``eval_`` prefix). Same numbers as the training loop's evaluation, recomputed from the
saved weights.
"""

from __future__ import annotations

from types import MappingProxyType

from probes.base import MetricSpec, Probe, ProbeContext
from probes.store import ResultRow


class ModelProbe(Probe):
    name = "model"
    primary_metrics = MappingProxyType({"accuracy": MetricSpec(min_effect=0.05)})

    def run(self, ctx: ProbeContext) -> list[ResultRow]:
        from training.loop import evaluate

        ev = evaluate(ctx.model, ctx.model_cfg, ctx.task, ctx.device)
        rows = []
        for key, value in sorted(ev.items()):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
            metric = {"eval_acc": "accuracy", "eval_loss": "loss"}.get(key, key.removeprefix("eval_"))
            rows.append(ResultRow(probe=self.name, feature="task", site="output", metric=metric, value=float(value)))
        return rows
