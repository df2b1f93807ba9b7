"""A fixed sample of the mutants ``make mutation`` runs, cheap enough for every ``make test`` (and so for CI).

The whole run (``make mutation``: every mutant of the maths and decision modules, ~45 min on 2 cores) is too long for
CI; a sample drawn with a fixed seed, the same mutants for the same code, takes a few minutes and still fails when
tests stop killing mutants. It generates the mutants (``mutmut run`` on a name no mutant has: mutmut copies and
mutates the modules and records which tests reach each function), draws ``--per-module`` mutant names per module,
runs only those, and scores them as ``tests/mutation_score.py`` does. Exit 1 when the sample's score is below
``--floor`` (percent) or a sampled mutant was not run, 2 when mutmut could not run. It replaces ``mutants/``: a
finished ``make mutation`` run's results go with it.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from mutation_score import outcome

MUTANTS = Path("mutants")
LOG = Path(".mutmut.log")


def mutant_codes(mutants: Path = MUTANTS) -> dict[str, dict[str, int | None]]:
    """Per mutated module, every mutant's name and its exit code (None until it was run)."""
    return {
        str(meta.relative_to(mutants)).removesuffix(".meta"): json.loads(meta.read_text())["exit_code_by_key"]
        for meta in sorted(mutants.rglob("*.py.meta"))
    }


def draw(names: dict[str, list[str]], per_module: int, seed: int) -> list[str]:
    """``per_module`` names from each module (all of a smaller one), the same for the same names and seed."""
    rng = random.Random(seed)
    return [
        n for module in sorted(names) for n in rng.sample(sorted(names[module]), min(per_module, len(names[module])))
    ]


def sample_score(codes: dict[str, dict[str, int | None]], sample: list[str]) -> dict[str, tuple[int, int, int]]:
    """(killed, survived, no tests) of the sampled mutants, per module."""
    chosen = set(sample)
    out = {}
    for module, by_name in codes.items():
        picked = [code for name, code in by_name.items() if name in chosen]
        out[module] = (
            sum(outcome(c) == "killed" for c in picked),
            sum(outcome(c) == "survived" for c in picked),
            sum(outcome(c) == "no tests" for c in picked),
        )
    return out


def mutmut(*names: str) -> int:
    with LOG.open("a") as log:
        return subprocess.run(
            [sys.executable, "-m", "mutmut", "run", *names], stdout=log, stderr=subprocess.STDOUT
        ).returncode


def failed(what: str, code: int) -> int:
    print(LOG.read_text()[-2000:], file=sys.stderr)
    print(f"{what} (mutmut exit {code}); its log is in {LOG}", file=sys.stderr)
    return 2


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--per-module", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--floor", type=float, default=85.0, help="minimum score of the whole sample, in percent")
    args = parser.parse_args()
    shutil.rmtree(MUTANTS, ignore_errors=True)
    LOG.unlink(missing_ok=True)
    # A name no mutant has: mutmut generates the mutants and maps tests to functions (kept in mutants/ for the next
    # run), then stops, saying nothing matched.
    code = mutmut("no-mutant-has-this-name")
    codes = mutant_codes()
    if not codes or not (MUTANTS / "mutmut-stats.json").is_file():
        return failed("mutmut made no mutants or could not run the tests", code)
    sample = draw({module: list(by_name) for module, by_name in codes.items()}, args.per_module, args.seed)
    code = mutmut(*sample)
    if code != 0:
        return failed("mutmut could not run the sample", code)
    table = sample_score(mutant_codes(), sample)
    print(f"{'module (sampled mutants)':34} {'killed':>7} {'survived':>9} {'no tests':>9} {'score':>7}")
    for module, (killed, survived, untested) in table.items():
        score = 100 * killed / max(1, killed + survived + untested)
        print(f"{module:34} {killed:7d} {survived:9d} {untested:9d} {score:6.1f}%")
    killed = sum(k for k, _, _ in table.values())
    judged = sum(sum(row) for row in table.values())
    score = 100 * killed / max(1, judged)
    print(f"sample of {len(sample)} mutants (seed {args.seed}): {killed} killed of {judged} run, {score:.1f}%")
    if judged < len(sample):
        print(f"{len(sample) - judged} sampled mutants were not run", file=sys.stderr)
        return 1
    if score < args.floor:
        print(f"mutation score of the sample {score:.1f}% is below the floor {args.floor:.0f}%", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
