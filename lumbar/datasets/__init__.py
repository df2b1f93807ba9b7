"""Labelled data sets joined through the same inference path as ``lumbar analyze``: what training and evaluation read."""
