"""The mutation scripts' own logic: the CI sample is the same for the same mutants, draws from every module, and is
scored from mutmut's exit codes as the whole run is."""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from mutation_sample import draw, mutant_codes, sample_score
from mutation_score import scores


def test_the_sample_is_fixed_and_spans_every_module():
    names = {"a.py": [f"a.f__mutmut_{k}" for k in range(100)], "b.py": ["b.g__mutmut_1", "b.g__mutmut_2"]}
    first = draw(names, per_module=10, seed=0)
    assert first == draw({m: list(reversed(n)) for m, n in names.items()}, per_module=10, seed=0)  # order-free
    assert len(first) == 12 and {"b.g__mutmut_1", "b.g__mutmut_2"} <= set(first)
    assert len(set(first)) == 12 and first != draw(names, per_module=10, seed=1)


def test_sample_and_whole_run_read_the_same_exit_codes(tmp_path):
    meta = tmp_path / "lumbar" / "metrics.py.meta"
    meta.parent.mkdir()
    codes = {"m.f__mutmut_1": 1, "m.f__mutmut_2": 0, "m.f__mutmut_3": 33, "m.f__mutmut_4": -24, "m.f__mutmut_5": None}
    codes |= {"m.f__mutmut_6": -9, "m.f__mutmut_7": 255, "m.f__mutmut_8": 35, "m.f__mutmut_9": 34}
    meta.write_text(json.dumps({"exit_code_by_key": codes}))
    read = mutant_codes(tmp_path)
    assert read == {"lumbar/metrics.py": codes}
    # a timeout (-24, 255) or a crash (-9) is a kill, a suspicious exit (35) a survivor, a skipped one (34) not run
    assert sample_score(read, list(codes)) == {"lumbar/metrics.py": (4, 2, 1)}
    assert sample_score(read, ["m.f__mutmut_2"]) == {"lumbar/metrics.py": (0, 1, 0)}
    assert scores(tmp_path) == {"lumbar/metrics.py": (4, 2, 1, 2)}
