"""Metrics of the field and the runners that apply them to a folder of studies."""


def in_sample_warning(report: dict) -> str | None:
    """A line saying how many of the evaluated patients the shipped model learnt from, where any: on them the
    figures are in-sample, higher than on new patients (the model card gives the held-out ones)."""
    seen = report.get("patients_seen_in_training") or []
    if not seen:
        return None
    return (
        f"in-sample: {len(seen)} of these {report['n_patients']} patients trained or selected the shipped model, so "
        "these figures overstate what it does on new patients (its model card gives the held-out figures)"
    )
