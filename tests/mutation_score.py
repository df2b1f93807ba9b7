"""Mutation score per module from a finished ``mutmut run`` (``make mutation``), with a floor.

A mutant is killed when a test fails on it (or it times out: a mutant that hangs is caught too); it survives when
every test passes; "no tests" means no selected test runs its function. The score is killed / (killed + survived +
no tests): code that no test reaches counts against it. Exit 1 when any module's score is below ``--floor``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

KILLED = {1, 3, 24, -24, 36, 152}
SURVIVED = {0}
NO_TESTS = {5, 33}


def scores(mutants: Path) -> dict[str, tuple[int, int, int, int]]:
    """(killed, survived, no tests, not yet checked) per mutated module, from mutmut's ``.meta`` files."""
    out = {}
    for meta in sorted(mutants.rglob("*.py.meta")):
        codes = list(json.loads(meta.read_text())["exit_code_by_key"].values())
        module = str(meta.relative_to(mutants)).removesuffix(".meta")
        out[module] = (
            sum(c in KILLED for c in codes),
            sum(c in SURVIVED for c in codes),
            sum(c in NO_TESTS for c in codes),
            sum(c is None for c in codes),
        )
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mutants", type=Path, default=Path("mutants"))
    parser.add_argument("--floor", type=float, default=0.0, help="minimum score per module, in percent")
    args = parser.parse_args()
    table = scores(args.mutants)
    if not table:
        print(f"no mutmut results under {args.mutants}: run `make mutation`", file=sys.stderr)
        return 2
    below = []
    print(f"{'module':34} {'killed':>7} {'survived':>9} {'no tests':>9} {'unchecked':>10} {'score':>7}")
    for module, (killed, survived, untested, unchecked) in table.items():
        score = 100.0 * killed / max(1, killed + survived + untested)
        print(f"{module:34} {killed:7d} {survived:9d} {untested:9d} {unchecked:10d} {score:6.1f}%")
        if score < args.floor or unchecked:
            below.append(module)
    if below:
        print(f"mutation score below {args.floor:.0f}% or run unfinished: {', '.join(below)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
