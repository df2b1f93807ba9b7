"""Reports: the mid-sagittal overlay, the per-level table and the review notes, as HTML and PDF."""
