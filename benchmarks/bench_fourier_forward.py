"""The Fourier probe's forward (the parity sweep's largest cost): hidden layers in fresh
buffers per batch (before) vs two buffers reused by every batch (``ParityMLP.output_logits``
with ``work``), on a parity demo teacher checkpoint.

    python -m benchmarks.bench_fourier_forward [--exp DIR] [--n-probe 100000] [--repeats 5]

Both sides: the same checkpoint (the teacher's last), the same ``n_probe`` inputs in batches of
``DEFAULT_PROBE_BATCH`` (256), one torch thread, warmed up, interleaved repeats, CPU time and
minor page faults per pass (``benchmarks.timing``); the logits must be equal bit for bit.
"""

from __future__ import annotations

import argparse
import json
import resource
from pathlib import Path

import torch

from benchmarks.timing import interleaved, threads

REPO = Path(__file__).resolve().parents[1]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--exp", type=Path, default=Path("demo_out"), help="a parity demo experiment")
    ap.add_argument("--n-probe", type=int, default=100_000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "fourier_forward.json")
    args = ap.parse_args(argv)

    from curriculens import constants as C
    from models.checkpoint import list_checkpoints, load_checkpoint

    step, path = list_checkpoints(args.exp / "runs" / "teacher" / "checkpoints")[-1]
    model, cfg, _ = load_checkpoint(path)
    g = torch.Generator().manual_seed(0)
    x = (1 - 2 * torch.randint(0, 2, (args.n_probe, cfg.d_in), generator=g)).float()
    bs = C.DEFAULT_PROBE_BATCH
    faults: dict[str, list[int]] = {}

    def side(name: str, reuse: bool):
        def run():
            before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            work: list | None = [] if reuse else None
            with torch.inference_mode():
                out = torch.cat([model.output_logits(x[i : i + bs], work=work) for i in range(0, x.shape[0], bs)])
            faults.setdefault(name, []).append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
            return out

        return run

    print(f"Fourier forward, teacher step {step} of {args.exp} ({cfg}), {args.n_probe:,} inputs in batches of {bs}")
    with threads(1):
        cmp = interleaved({"fresh": side("fresh", False), "reused": side("reused", True)}, repeats=args.repeats)
    assert torch.equal(cmp.values["fresh"], cmp.values["reused"]), "the logits must be equal bit for bit"
    for name in ("fresh", "reused"):
        print(
            f"  {name:<7} CPU {cmp.median(name):6.3f} s median of {args.repeats} "
            f"({', '.join(f'{t:.3f}' for t in cmp.cpu[name])}); minor page faults {faults[name][-1]:,}"
        )
    print(
        f"  ratio {cmp.ratio('fresh', 'reused'):.2f}x; logits equal bit for bit; machine: {cmp.load_start} -> {cmp.load_end}"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    result = {"exp": str(args.exp), "step": step, "n_probe": args.n_probe, **cmp.to_dict(), "page_faults": faults}
    args.out.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
