"""The ``lumbar`` command: a thin shell over the Python API. Errors a user can cause become one line."""

from __future__ import annotations

from pathlib import Path

import typer

from lumbar import __version__

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Deep-learning analysis of lumbar spine images.")
train_app = typer.Typer(no_args_is_help=True, help="Train the project's models on your own data.")
app.add_typer(train_app, name="train")


@train_app.command("segmentation")
def train_segmentation_cmd(
    data: Path = typer.Option(..., help="SPIDER PNG layout (images/, masks/) or NIfTI pairs (imagesTr/, labelsTr/)."),
    out: Path = typer.Option(..., "--out", "-o", help="Run folder: checkpoints, log, ONNX. Rerun to resume."),
    steps: int = typer.Option(6000, help="Optimiser steps in total."),
    batch_size: int = typer.Option(8),
    max_minutes: float = typer.Option(None, help="Stop (with a checkpoint) after this many minutes."),
    seed: int = typer.Option(0, help="Seed of the patient split and of training."),
    spacing: float = typer.Option(None, help="Pixel spacing in mm for PNGs without an overview.csv."),
) -> None:
    """Train the sagittal segmentation network (disc, vertebra, canal)."""
    from lumbar.train.segmentation import SegmentationConfig, train_segmentation

    cfg = SegmentationConfig(data=str(data), out=str(out), steps=steps, batch_size=batch_size,
                             max_minutes=max_minutes, seed=seed, spacing_mm=spacing)
    path = train_segmentation(cfg)
    typer.echo(f"wrote {path}")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"lumbar {__version__}")
        raise typer.Exit()


@app.callback()
def main(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Show the version.")) -> None:
    """Deep-learning analysis of lumbar spine images."""
