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

from mutmut.stats import status_by_exit_code

# mutmut's own reading of a mutant's exit code, grouped: a mutant that fails a test, times out, crashes or fails the
# type check is killed; one whose tests pass (or end in an exit code mutmut calls suspicious) survives.
KILLED = {"killed", "timeout", "segfault", "caught by type check"}
SURVIVED = {"survived", "suspicious"}
NO_TESTS = {"no tests"}


def outcome(code: int | None) -> str:
    """killed, survived, no tests, or not run (not checked, skipped, interrupted)."""
    status = status_by_exit_code[code]
    groups = {"killed": KILLED, "survived": SURVIVED, "no tests": NO_TESTS}
    return next((name for name, members in groups.items() if status in members), "not run")


def scores(mutants: Path) -> dict[str, tuple[int, int, int, int]]:
    """(killed, survived, no tests, not yet checked) per mutated module, from mutmut's ``.meta`` files."""
    out = {}
    for meta in sorted(mutants.rglob("*.py.meta")):
        codes = list(json.loads(meta.read_text())["exit_code_by_key"].values())
        module = str(meta.relative_to(mutants)).removesuffix(".meta")
        out[module] = (
            sum(outcome(c) == "killed" for c in codes),
            sum(outcome(c) == "survived" for c in codes),
            sum(outcome(c) == "no tests" for c in codes),
            sum(outcome(c) == "not run" for c in codes),
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
