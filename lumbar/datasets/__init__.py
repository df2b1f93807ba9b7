"""Labelled data sets, read through the same inference path as ``lumbar analyze``: what training and
evaluation read."""
