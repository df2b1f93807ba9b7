"""How far the shipped frontal networks' patient split holds, under the corrected grouping of the AASCE film names.

The frontal networks (``radiograph``, ``radiograph_corners``, ``radiograph_levels``) were split into training and
validation films with the grouping before ``xray_ap.GROUPING`` 2 (``xray_ap.legacy_group``): ``...-138 D AP2``,
``...-142 A AP (2)``, ``...-159 A AP2`` and each ``coronal<k>`` were groups of their own, and films of one patient
stored under two numbers (``xray_ap.SAME_RADIOGRAPH_PAIRS``) were two groups. Per shipped record: its training and
validation films (``training_split`` with the grouping its record was made with, ``xray_ap.grouping_of``), the
validation films whose patient (``xray_ap.patient_group``) has films in training, those of them that are the same
radiograph as a training film, and those that share only the catch-all ``coronal`` group (not known to be one
patient). Then the test part (without the 15 films ``test_overlaps_training.csv`` lists): its patients, and its films
whose patient has films in the training part (none expected). And what the training command splits now (the corrected
grouping, the same fraction and seed): how many of its validation films the shipped networks' validation held.

Reads only the file names and the images' sizes: seconds. Usage: ``python bench/radiograph_split.py``.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import SHARED_DATA, save

from lumbar.datasets.xray_ap import CORONAL, SAME_RADIOGRAPH_PAIRS, grouping_of, legacy_group, patient_group, read_part
from lumbar.models.registry import load_model
from lumbar.train.radiograph import training_split

DATA = SHARED_DATA / "xray_ap"
MODELS = ("radiograph", "radiograph_corners", "radiograph_levels")


def twins(name: str) -> set[str]:
    """The training films that are the same radiograph as ``name`` (either way round)."""
    return {b for a, b in SAME_RADIOGRAPH_PAIRS if a == name} | {a for a, b in SAME_RADIOGRAPH_PAIRS if b == name}


def leak(record: dict) -> dict:
    """The record's validation films that come from its training patients, under the corrected grouping."""
    config = record["config"]
    grouping = grouping_of(record)
    train, val = training_split(str(DATA), config["val_fraction"], config["seed"], grouping=grouping)
    assert sorted({grouping(r.name) for r in val}) == sorted(record["split_groups"]["validation"]), "not its split"
    trained = {r.name for r in train}
    trained_groups = {patient_group(r.name) for r in train}
    shared = [r.name for r in val if patient_group(r.name) in trained_groups]
    same = [[name, sorted(twins(name) & trained)] for name in shared if twins(name) & trained]
    coronal_only = [name for name in shared if patient_group(name) == CORONAL and not twins(name) & trained]
    return {
        "grouping": "legacy" if grouping is legacy_group else "corrected",
        "training_films": len(train),
        "validation_films": len(val),
        "validation_films_of_training_patients": [n for n in shared if n not in coronal_only],
        "same_radiograph_as_a_training_film": same,
        "sharing_only_the_coronal_group": coronal_only,
        "validation_names": sorted(r.name for r in val),
    }


def main() -> None:
    if not DATA.is_dir():
        sys.exit(f"skipped: {DATA} not found (the AASCE radiographs live in ../shared/data/xray_ap)")
    models = {name: leak(load_model(name).meta) for name in MODELS}
    first = models[MODELS[0]]
    training_part = read_part(DATA, "training")
    test = [r for r in read_part(DATA, "test") if not r.repeats_training]
    training_groups = {r.group for r in training_part}
    config = load_model(MODELS[0]).meta["config"]
    _, now = training_split(str(DATA), config["val_fraction"], config["seed"])
    payload = {
        "models": {
            name: {
                **{k: v for k, v in m.items() if k != "validation_names"},
                "of_training_patients": len(m["validation_films_of_training_patients"]),
                "same_radiograph": len(m["same_radiograph_as_a_training_film"]),
            }
            for name, m in models.items()
        },
        "one_split": all(m["validation_names"] == first["validation_names"] for m in models.values()),
        "test": {
            "films": len(test),
            "patients": len({r.group for r in test}),
            "patients_by_legacy_grouping": len({legacy_group(r.name) for r in test}),
            "films_of_training_patients": sum(r.group in training_groups for r in test),
        },
        "training_command_now": {
            "validation_films": len(now),
            "also_in_the_shipped_validation": len({r.name for r in now} & set(first["validation_names"])),
        },
    }
    for name, m in payload["models"].items():
        print(
            f"{name}: {m['validation_films']} validation films ({m['grouping']} grouping), "
            f"{m['of_training_patients']} of training patients, {m['same_radiograph']} the same radiograph as a "
            f"training film, {len(m['sharing_only_the_coronal_group'])} sharing only the coronal group"
        )
    for name, twin in first["same_radiograph_as_a_training_film"]:
        print(f"  {name} = {'; '.join(twin)}")
    for name in first["validation_films_of_training_patients"]:
        print(f"  of a training patient: {name} (group {patient_group(name)})")
    print(f"one split for all three: {payload['one_split']}")
    print(
        f"test: {payload['test']['films']} films, {payload['test']['patients']} patients "
        f"({payload['test']['patients_by_legacy_grouping']} by the legacy grouping), "
        f"{payload['test']['films_of_training_patients']} of training patients"
    )
    now_ = payload["training_command_now"]
    print(
        f"the training command now: {now_['validation_films']} validation films, "
        f"{now_['also_in_the_shipped_validation']} of them in the shipped validation"
    )
    save("radiograph_split", payload)


if __name__ == "__main__":
    main()
