"""The grid's teacher forwards (about 60% of the parity demo grid's CPU) in four arithmetics:
what ``ParityMLP.class1_margin`` (the Fourier probe's p(x), and since 2026-12-06 a two-class
teacher's targets in the grid on CPU) buys there against the logits, and what it changes.

    python -m benchmarks.bench_teacher_forward [--blocks 300] [--repeats 5] [--hidden-chunk 2000]

As the grid runs them (``training.teachers.TeacherOutputs``): three width-8000 parity teachers
(d_in 60, two classes, seeded default init) in turn on each 256-row block (8 steps of 32), so
their weights and buffers alternate through the cache. Sides, one torch thread, warmed up,
interleaved repeats, CPU time (``benchmarks.timing``), µs per row and teacher:

- ``logits``: ``ParityMLP.output_logits(x, work, hidden=True)`` with one ``work`` shared by the
  teachers: one [256, 8000] GEMM, ReLU, the output layer's [256, 2] GEMM. The grid's
  arithmetic until the margin replaced it (docs/grids.md, "Third round").
- ``64-row chunks``: the same logits in 64-row chunks (``output_logits`` without ``hidden``;
  the same bits).
- ``margin, whole hidden``: the [256, 8000] GEMM and ReLU, then ``logit_1 - logit_0`` as one
  matrix-vector product.
- ``class1_margin``: ``ParityMLP.class1_margin`` (the hidden layer ``--hidden-chunk`` units at a
  time, default ``constants.MARGIN_HIDDEN_UNITS``, its margin accumulated): what the Fourier
  probe and the grid's two-class teachers run. Changes rounding.

Results: ``benchmarks/results/teacher_forward.{txt,json}``.
"""

from __future__ import annotations

import argparse

import torch

from benchmarks.timing import interleaved, threads, write_results

ROWS, D_IN, WIDTH = 256, 60, 8000


def _teachers(n: int = 3) -> list:
    from models.configs import MLPConfig
    from models.mlp import ParityMLP

    out = []
    for seed in range(n):
        torch.manual_seed(seed)
        out.append(ParityMLP(MLPConfig(d_in=D_IN, width=WIDTH, depth=1, n_classes=2)).requires_grad_(False))
    return out


def sides(teachers: list, xs: torch.Tensor, hidden_chunk: int) -> dict:
    """``name -> fn()`` each running every block through every teacher; returns the last outputs."""
    from models import mlp

    units = mlp.MARGIN_HIDDEN_UNITS
    grid_work: list = []  # the grid's logits-only forwards share one buffer list (TeacherOutputs)
    shared: list = []
    parts = []
    for m in teachers:
        w1, b1 = m.blocks[0].fc.weight, m.blocks[0].fc.bias
        w2, b2 = m.unembed.weight, m.unembed.bias
        parts.append((w1, b1, (w2[1] - w2[0]).contiguous(), b2[1] - b2[0]))
    buf = torch.empty(ROWS, WIDTH)
    margin_work: list = []

    def logits():
        for x in xs:
            out = [m.output_logits(x, work=grid_work, hidden=True)[0] for m in teachers]
        return out

    def chunks():
        for x in xs:
            out = [m.output_logits(x, work=shared) for m in teachers]
        return out

    def margin():
        for x in xs:
            out = []
            for w1, b1, v, c in parts:
                h = torch.addmm(b1, x, w1.t(), out=buf).relu_()
                out.append(torch.mv(h, v).add_(c))
        return out

    def blocked():
        mlp.MARGIN_HIDDEN_UNITS = hidden_chunk
        try:
            for x in xs:
                out = [m.class1_margin(x, work=margin_work) for m in teachers]
        finally:
            mlp.MARGIN_HIDDEN_UNITS = units
        return out

    return {"logits": logits, "64-row chunks": chunks, "margin, whole hidden": margin, "class1_margin": blocked}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--blocks", type=int, default=300, help="256-row blocks per repeat (each through 3 teachers)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument(
        "--hidden-chunk", type=int, default=None, help="hidden units per block of class1_margin (default: the constant)"
    )
    ap.add_argument("--no-save", action="store_true")
    args = ap.parse_args(argv)
    from curriculens.constants import MARGIN_HIDDEN_UNITS

    args.hidden_chunk = args.hidden_chunk or MARGIN_HIDDEN_UNITS
    if args.blocks < 1 or args.repeats < 1 or not 0 < args.hidden_chunk <= WIDTH:
        ap.error("--blocks and --repeats take positive counts, --hidden-chunk 1..8000")
    with threads(1), torch.no_grad():
        teachers = _teachers()
        g = torch.Generator().manual_seed(0)
        xs = (torch.randint(0, 2, (args.blocks, ROWS, D_IN), generator=g) * 2 - 1).float()
        fns = sides(teachers, xs, args.hidden_chunk)
        res = interleaved(fns, repeats=args.repeats)
    ref = res.values["logits"]
    same = all(torch.equal(a, b) for a, b in zip(res.values["64-row chunks"], ref, strict=True))
    margin_err = max(
        float(((r[:, 1] - r[:, 0]) - m).abs().max())
        for r, m in zip(ref, res.values["margin, whole hidden"], strict=True)
    )
    blocked_err = max(
        float(((r[:, 1] - r[:, 0]) - m).abs().max()) for r, m in zip(ref, res.values["class1_margin"], strict=True)
    )
    rows = args.blocks * ROWS * len(teachers)
    lines = [
        f"grid teacher forwards: 3 teachers (60 -> {WIDTH} -> 2) in turn on {args.blocks} blocks of {ROWS} rows; "
        f"one thread, CPU time, {args.repeats} interleaved repeats after a warm-up",
        f"load: {res.load_start} at start, {res.load_end} at end",
    ]
    for name in fns:
        per_row = [c / rows * 1e6 for c in res.cpu[name]]
        lines.append(
            f"  {name:<22} median {res.median(name) / rows * 1e6:6.2f} µs/row  "
            f"({', '.join(f'{t:.2f}' for t in per_row)})  {res.median(name) / res.median('logits'):.2f}x logits"
        )
    lines += [
        f"64-row chunks: logits equal to the 256-row ones bit for bit: {same}",
        f"margin vs the logits' logit_1 - logit_0: max |difference| {margin_err:.2e}; "
        f"class1_margin ({args.hidden_chunk} units a block): {blocked_err:.2e}",
    ]
    print("\n".join(lines))
    if not args.no_save:
        report = {
            "config": {"blocks": args.blocks, "repeats": args.repeats, "hidden_chunk": args.hidden_chunk},
            "rows_per_repeat": rows,
            "chunks_equal": same,
            "margin_max_abs_diff": margin_err,
            "blocked_max_abs_diff": blocked_err,
            **res.to_dict(),
        }
        write_results("teacher_forward", lines, report)
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
