"""Metrics of the field and the runners that apply them to a folder of studies."""
