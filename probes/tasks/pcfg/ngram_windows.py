"""Where the n-gram metrics look (paper section 7.2; ``probes.tasks.pcfg.ngram`` has the metrics):
the probed positions of a sentence, the window around a position, and each variant's masked
positions. Positions count ``[BOS] + tokens``, so ``seq_len`` includes BOS."""

from __future__ import annotations

from collections.abc import Sequence

KINDS = ("robust", "close")


def probe_positions(seq_len: int, stride: int, max_positions: int = 0) -> list[int]:
    """Positions stride, 2 stride, ... below ``seq_len`` (the length with BOS), at most
    ``max_positions`` of them (0 = all; the paper: 14, p in {30, ..., 420})."""
    out = list(range(stride, seq_len, stride))
    return out[:max_positions] if max_positions else out


def window(p: int, n: int, seq_len: int) -> list[int]:
    """The n-gram window around p, clipped to [0, seq_len)."""
    h = (n - 1) // 2
    return [i for i in range(p - h, p + h + 1) if 0 <= i < seq_len]


def variants(p: int, seq_len: int, windows: Sequence[int]) -> list[tuple[str, int, list[int]]]:
    """``[(kind, n, masked positions)]``: the baseline (kind ``base``, n 1) first."""
    out = [("base", 1, [p])]
    for n in windows:
        w = window(p, n, seq_len)
        out.append(("robust", n, w))
        keep = set(w) - {p}
        out.append(("close", n, [i for i in range(seq_len) if i not in keep]))
    return out
