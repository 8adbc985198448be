"""``usad export``: ONNX with parity, accuracy-guarded INT8, TensorRT engine + build script."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape

from usad.cli import app
from usad.errors import require
from usad.onnx_conventions import GRAPHS, INT8_RECIPES

console = Console(stderr=True)


@app.command("export")
def export_command(
    model_dir: Path = typer.Argument(..., help="Model directory (config.json + safetensors); files go into it."),
    int8: bool = typer.Option(False, "--int8", help="Also write the accuracy-guarded INT8 model: the fastest "
                                                    "recipe that passes, timed here against fp32 (default if faster)."),
    fmt: str = typer.Option("onnx", "--format", help="'onnx', or 'engine': ONNX plus TensorRT engine/build_engine.sh."),
    opset: int = typer.Option(18, help=">= 18: dynamo exporter (ORT, TensorRT 10); 17: legacy exporter for "
                                       "TensorRT 8.5/8.6 (JetPack 5 / 6.0), written as model.opset17.onnx."),
    graph: str = typer.Option(None, help="'fused': attention as ONNX Runtime contrib ops (default at opset >= 18); "
                                         "'plain': standard ONNX, for TensorRT and before/after (default with "
                                         "--format engine), written as model.plain.onnx."),
    layers: str = typer.Option("all", help="Layers to output: 'all' or indices like 6 or 2,4,-1."),
    pooled: bool = typer.Option(False, help="Output the mean-pooled embedding of those layers instead of frames."),
    calibration: list[Path] = typer.Option(None, help="Real audio like the deployment's: directories of audio "
                                                      "files or .tar shards (repeatable). Needed by --int8; "
                                                      "without it parity runs on seeded noise."),
    min_cosine: float = typer.Option(0.995, help="Accuracy guard: min per-frame cosine INT8 vs fp32 on held-out "
                                                 "audio (mean over frames, min over clips and layers)."),
    recipes: str = typer.Option(",".join(INT8_RECIPES), help="INT8 recipes to try and time, comma-separated."),
    keep_candidates: bool = typer.Option(False, help="Also keep every recipe's file (model.int8.RECIPE.onnx), "
                                                     "for `usad bench latency`."),
    force: bool = typer.Option(False, help="Write the INT8 file even when the guard fails."),
    crop_seconds: float = typer.Option(5.0, help="Length of each calibration / held-out crop."),
    calibration_crops: int = typer.Option(32, help="Crops to calibrate on."),
    heldout_crops: int = typer.Option(12, help="Crops from other recordings for the accuracy guard."),
    max_exclude: float = typer.Option(0.25, help="Fraction of quantized nodes the guard may return to float, "
                                                 "most sensitive layer groups first (0: no retry)."),
    tasks: Path = typer.Option(None, help="Task audio built by `usad data tasks`: the INT8 guard then also needs "
                                          ">= 99% mean-task retention (slow: probes both models)."),
    stream: bool = typer.Option(False, "--stream", help="Also the stateful chunk step of a streaming model "
                                "(usad-tiny-stream ...): model.stream.onnx, with --int8 model.stream.int8.onnx."),
) -> None:
    """Export a model dir to ONNX (parity-checked against torch), optionally INT8 and TensorRT."""
    require("export", "usad export")
    if tasks:
        require("bench", "usad export --tasks")
    from usad.bench.accuracy import task_scorer
    from usad.bench.harness import time_cell
    from usad.export.onnx_export import ExportError
    from usad.export.pipeline import export_model_dir
    from usad.export.streaming import export_stream_dir
    from usad.modeldir import ModelDirError
    from usad.quantize import CalibrationError, QuantizationRefused

    if fmt not in ("onnx", "engine"):
        raise typer.BadParameter(f"--format takes 'onnx' or 'engine', got {fmt!r}")
    if graph not in (None, *GRAPHS):
        raise typer.BadParameter(f"--graph takes {' or '.join(GRAPHS)}, got {graph!r}")
    if graph == "fused" and (fmt == "engine" or opset < 18):
        raise typer.BadParameter("--graph fused runs on ONNX Runtime only (contrib ops, dynamo exporter): "
                                 "use --graph plain with --format engine or --opset 17")
    chosen_recipes = tuple(r.strip() for r in recipes.split(",") if r.strip())
    if not chosen_recipes or set(chosen_recipes) - set(INT8_RECIPES):
        raise typer.BadParameter(f"--recipes takes some of {','.join(INT8_RECIPES)}, got {recipes!r}")
    try:
        chosen = None if layers == "all" else [int(x) for x in layers.split(",")]
    except ValueError:
        raise typer.BadParameter(f"--layers takes 'all' or indices like 2,4,-1, got {layers!r}") from None
    if stream and (pooled or opset < 18):
        raise typer.BadParameter("--stream exports frames with the dynamo exporter: drop --pooled / --opset 17")
    quantize_options = {"crop_seconds": crop_seconds, "calibration_crops": calibration_crops,
                        "heldout_crops": heldout_crops, "max_exclude_fraction": max_exclude}
    log = lambda message: console.print(message, highlight=False)  # noqa: E731
    try:
        if stream:  # first: a full-context model fails here at once. The chunk step is not timed as an encoder.
            export_stream_dir(model_dir, int8=int8, layers=chosen, calibration=calibration or None, force=force,
                              min_cosine=min_cosine, quantize_options=quantize_options | {"recipes": chosen_recipes},
                              log=log)
        export_model_dir(model_dir, opset=opset, graph=graph, int8=int8, engine=fmt == "engine", layers=chosen,
                         pooled=pooled, calibration=calibration or None, force=force, min_cosine=min_cosine,
                         quantize_options=quantize_options | {"recipes": chosen_recipes,
                                                              "keep_candidates": keep_candidates,
                                                              "time_cell": time_cell},
                         task_score=task_scorer(tasks) if tasks else None, log=log)
    except (ExportError, QuantizationRefused, CalibrationError, ModelDirError) as err:
        console.print(f"[red]{escape(str(err))}")
        if (model_dir / "export.json").is_file():
            console.print(f"figures: {model_dir / 'export.json'}")
        raise typer.Exit(2) from err
    console.print(f"[green]done: {model_dir / 'export.json'}")
