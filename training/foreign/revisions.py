"""Revision SPECs: which checkpoints of a trajectory to take, by name, step, range or log spacing.

Shared by ``curriculens fetch --revisions`` (over a hub repository's branches) and
``curriculens import --revisions`` (over the checkpoints found on disk). Pure functions.
"""

from __future__ import annotations

import math
import re

from curriculens.errors import CurriculensError
from training.foreign.sources import parse_step

_RANGE = re.compile(r"^(\d+):(\d+)(?::(\d+))?$")
_LOG = re.compile(r"^log:(\d+)$")


def parse_spec(spec: str) -> tuple:
    """``("all",)``, ``("log", n)``, ``("range", start, stop, stride)`` or ``("list", items)``."""
    spec = spec.strip()
    if not spec:
        raise CurriculensError("--revisions is empty (e.g. step1000,step2000 | 0:10000:1000 | log:8 | all)")
    if spec == "all":
        return ("all",)
    m = _LOG.match(spec)
    if m:
        n = int(m.group(1))
        if n < 2:
            raise CurriculensError(f"--revisions log:N needs N >= 2, got {n}")
        return ("log", n)
    m = _RANGE.match(spec)
    if m:
        start, stop, stride = int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)
        if stop < start or (m.group(3) is not None and stride < 1):
            raise CurriculensError(f"bad revision range {spec!r} (START:STOP[:STRIDE], steps, STOP >= START)")
        return ("range", start, stop, stride)
    items = [s.strip() for s in spec.split(",")]
    if any(not s or ".." in s for s in items):
        raise CurriculensError(f"bad revision list {spec!r}")
    return ("list", tuple(items))


def resolve_revisions(spec: str, branches: list[str]) -> list[str]:
    """The branch names SPEC picks from ``branches`` (steps read by ``parse_step``), ordered by step."""
    return select(spec, {b: parse_step(b) for b in branches})


def select(spec: str, named: dict[str, int | None]) -> list[str]:
    """The names SPEC picks from ``named`` (name -> its step, None if it has none), ordered by step.

    SPEC is one of:

    - ``all``: every branch whose name holds a step (``stepN``, ``stepN-tokensM``, ``checkpoint-N``);
    - a comma list of branch names or step numbers (``step1000,step2000`` or ``1000,2000``; a
      number matches the branch of that step, e.g. OLMo's ``step1000-tokens4B``);
    - ``START:STOP[:STRIDE]``: the step branches with START <= step <= STOP (and, with STRIDE,
      ``(step - START) % STRIDE == 0``);
    - ``log:N``: N branches log-spaced in step (the first and the last included; the nearest
      branch to each of N points evenly spaced in log(1 + step); fewer if several coincide).

    A listed name or step that is not among the branches is a one-line error.
    """
    kind = parse_spec(spec)
    branches = list(named)
    stepped = sorted(((s, b) for b, s in named.items() if s is not None), key=lambda t: t[0])
    by_step: dict[int, str] = {}
    for s, b in stepped:
        by_step.setdefault(s, b)
    steps = sorted(by_step)
    if kind[0] == "list":
        out = []
        for item in kind[1]:
            if item in branches:
                out.append(item)
            elif item.isdigit() and int(item) in by_step:
                out.append(by_step[int(item)])
            else:
                near = ", ".join(by_step[s] for s in steps[:3]) or ", ".join(branches[:3]) or "none"
                raise CurriculensError(f"no revision {item!r} (there are e.g. {near})")
        return sorted(dict.fromkeys(out), key=lambda b: (named[b] is None, named[b] or 0, b))
    if not steps:
        raise CurriculensError(
            f"no revision names a step (stepN, stepN-tokens..., checkpoint-N) for {spec!r}; "
            f"there are: {', '.join(branches[:5]) or 'none'}"
        )
    if kind[0] == "all":
        picked = steps
    elif kind[0] == "range":
        _, start, stop, stride = kind
        picked = [s for s in steps if start <= s <= stop and (not stride or (s - start) % stride == 0)]
    else:
        n = kind[1]
        lo, hi = math.log1p(steps[0]), math.log1p(steps[-1])
        picked = []
        for i in range(n):
            target = lo + (hi - lo) * i / (n - 1)
            picked.append(min(steps, key=lambda s: (abs(math.log1p(s) - target), s)))
        picked = sorted(set(picked))
    if not picked:
        raise CurriculensError(f"no revision matches {spec!r} (steps {steps[0]}..{steps[-1]})")
    return [by_step[s] for s in picked]
