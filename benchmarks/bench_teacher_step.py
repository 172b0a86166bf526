"""The parity demo teacher's training step: plain SGD applied inside the hand-written backward
(``ParityMLP.ce_grads(sgd_lr=...)``, what a plain-SGD teacher runs since 2026-12-07) against
gradients then ``SGD.step`` (the arithmetic before; what students still run).

    python -m benchmarks.bench_teacher_step [--steps 40000] [--block 1000]

Both sides train the demo's teacher (60 -> 8000 -> 2, seed 0 init, the demo's batches and lr
schedule) from the same initial weights, each along its own trajectory, in one process with one
torch thread: blocks of ``--block`` steps alternate between the sides (A B, then B A, ...), so
a change of the machine's speed hits both alike. CPU time per block (``time.process_time``);
no evaluation, checkpoint or data time is inside a block's timing except the batch slicing both
sides share. Reported: each side's total, the ratio of totals, the per-block paired ratios
(median, range), the load, and each side's held-out accuracy at the end (the fused update
rounds differently, so the two trajectories part; both should learn the task).

Results: ``benchmarks/results/teacher_step.{txt,json}``.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import tempfile
import time

import torch

from benchmarks.timing import load, threads, write_results


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=None, help="steps per side (default: the demo teacher's 40,000)")
    ap.add_argument("--block", type=int, default=1000, help="steps per timed block")
    ap.add_argument("--no-save", action="store_true")
    args = ap.parse_args(argv)
    from models.registry import build_model
    from training.engine import evaluate
    from training.optim import make_optimizer, set_lr
    from training.plans import demo_plan
    from training.tasks import build_task

    with tempfile.TemporaryDirectory() as tmp:
        cfg, _ = demo_plan("parity", "demo", out=tmp, seeds=range(1), device="cpu")
    steps = args.steps or cfg.steps
    if steps < 1 or args.block < 1:
        ap.error("--steps and --block take positive counts")
    task = build_task(cfg.task)
    with threads(1):
        torch.manual_seed(cfg.seed)
        models = {"gradients then SGD.step": build_model(cfg.model)}
        models["fused (sgd_lr)"] = build_model(cfg.model)
        models["fused (sgd_lr)"].load_state_dict(models["gradients then SGD.step"].state_dict())
        opts = {k: make_optimizer(m.parameters(), cfg.optim) for k, m in models.items()}
        works = {k: {} for k in models}
        names = list(models)

        def run(m, opt, work: dict, fused: bool, first: int, last: int) -> None:
            for step in range(first, last):
                b = task.train_batch(step, cfg.batch_size, cfg.data_seed)
                set_lr(opt, step, cfg.steps, cfg.optim)
                if fused:
                    m.ce_grads(b["x"], b["y"], work, sgd_lr=opt.plain_lr())
                else:
                    opt.zero_grad(set_to_none=True)
                    m.ce_grads(b["x"], b["y"], work)
                opt.step()

        fused = {names[0]: False, names[1]: True}
        for name in names:  # warm-up on a throwaway model: the timed ones start from the same init
            warm = build_model(cfg.model)
            run(warm, make_optimizer(warm.parameters(), cfg.optim), {}, fused[name], 0, 50)
        load_start = load()
        cpu = {k: [] for k in names}
        for i, first in enumerate(range(0, steps, args.block)):
            last = min(first + args.block, steps)
            for name in names if i % 2 == 0 else names[::-1]:
                t = time.process_time()
                run(models[name], opts[name], works[name], fused[name], first, last)
                cpu[name].append(time.process_time() - t)
        load_end = load()
        accs = {k: evaluate(m, cfg.model, task, torch.device("cpu"))["eval_acc"] for k, m in models.items()}
    a, b = names
    total = {k: sum(v) for k, v in cpu.items()}
    paired = [y / x for x, y in zip(cpu[a], cpu[b], strict=True)]
    lines = [
        f"parity demo teacher (60 -> {cfg.model.width} -> 2, batch {cfg.batch_size}, SGD lr {cfg.optim.lr}), "
        f"{steps:,} steps a side in alternating blocks of {args.block}; one thread, CPU time",
        f"load: {load_start} at start, {load_end} at end",
        *(
            f"  {k:<24} {total[k]:6.1f} s  {total[k] / steps * 1e6:6.0f} µs/step  held-out acc at the end {accs[k]:.3f}"
            for k in names
        ),
        f"fused / unfused: {total[b] / total[a]:.3f} of the total; per block median {statistics.median(paired):.3f} "
        f"(range {min(paired):.3f}-{max(paired):.3f}, {len(paired)} blocks)",
    ]
    print("\n".join(lines))
    if not args.no_save:
        report = {
            "config": {"steps": steps, "block": args.block, "model": dataclasses.asdict(cfg.model), "lr": cfg.optim.lr},
            "cpu_s": cpu,
            "total_cpu_s": total,
            "paired_block_ratios": paired,
            "held_out_acc": accs,
            "load_start": load_start,
            "load_end": load_end,
        }
        write_results("teacher_step", lines, report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
