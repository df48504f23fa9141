"""Command line: ``python -m cvplay {models,predict,export,...}``.

Bad input never ends in a Python traceback: known errors print one clear sentence to stderr.
Exit status: 0 success, 1 when some input failed, 2 for a usage or model error.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from typing import Sequence

from cvplay.registry import DEFAULT_MODEL, ModelCardError, ModelNotFoundError

EXIT_OK = 0
EXIT_INPUT_FAILED = 1
EXIT_USAGE = 2


class CommandError(Exception):
    """A problem the user can fix, reported as one sentence and exit status 2."""


def _known_errors() -> tuple[type[BaseException], ...]:
    from cvplay.fetch import FetchError
    from cvplay.images import ImageError
    from cvplay.runtime import ModelLoadError

    errors: list[type[BaseException]] = [
        CommandError, ModelCardError, ModelNotFoundError, ModelLoadError, ImageError, FetchError,
    ]
    try:
        from cvplay.datasets import DatasetError

        errors.append(DatasetError)
    except ImportError:
        pass
    return tuple(errors)


# --- models --------------------------------------------------------------------------------


def cmd_models(args: argparse.Namespace) -> int:
    from cvplay.registry import discover

    entries = discover()
    good = [entry.card for entry in entries if entry.card is not None]
    broken = [entry for entry in entries if entry.card is None]
    if args.format == "json":
        print(json.dumps([card.summary() for card in good], indent=2))
    else:
        if not good:
            print("No models installed.")
        else:
            width = max(len(card.name) for card in good)
            print(f"{'name':<{width}}  {'task':<8}  {'classes':>7}  path")
            for card in good:
                print(f"{card.name:<{width}}  {card.task:<8}  {card.num_classes:>7}  {card.model_path}")
    for entry in broken:
        print(f"warning: {entry.error}", file=sys.stderr)
    return EXIT_OK


# --- predict -------------------------------------------------------------------------------


def cmd_predict(args: argparse.Namespace) -> int:
    from cvplay.fetch import FetchError
    from cvplay.images import ImageError, load_image
    from cvplay.runtime import create_classifier, top_k

    if args.top < 1:
        raise CommandError("--top must be at least 1")
    classifier = create_classifier(args.model)
    results: list[dict] = []
    images = []
    for source in args.inputs:
        try:
            images.append(load_image(source))
            results.append({"input": source, "top": None, "error": None})
        except (ImageError, FetchError, OSError) as error:
            message = str(error) if not isinstance(error, OSError) else f"Cannot read the file ({error.strerror})."
            results.append({"input": source, "top": None, "error": message})
    probabilities = iter(classifier.predict_proba(images))
    for result in results:
        if result["error"] is None:
            top = top_k(next(probabilities), classifier.labels, args.top)
            result["top"] = [prediction.to_dict() for prediction in top]
    _print_predictions(results, args.format)
    return EXIT_INPUT_FAILED if any(result["error"] for result in results) else EXIT_OK


def _print_predictions(results: list[dict], output_format: str) -> None:
    if output_format == "json":
        for result in results:
            print(json.dumps(result, ensure_ascii=False))
    elif output_format == "csv":
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(["input", "rank", "label", "index", "score", "error"])
        for result in results:
            if result["error"]:
                writer.writerow([result["input"], "", "", "", "", result["error"]])
                continue
            for rank, entry in enumerate(result["top"], start=1):
                writer.writerow([result["input"], rank, entry["label"], entry["index"], f"{entry['score']:.6f}", ""])
    else:
        for result in results:
            print(result["input"])
            if result["error"]:
                print(f"  error: {result['error']}")
                continue
            for entry in result["top"]:
                print(f"  {entry['score']:7.2%}  {entry['label']}")


# --- export --------------------------------------------------------------------------------


def cmd_export(args: argparse.Namespace) -> int:
    try:
        from cvplay.training.efficientnet_lite import WeightsNotFoundError
        from cvplay.training.export import ExportError, export_imagenet_lite0
    except ImportError as error:
        raise CommandError(_training_missing(error)) from None
    try:
        card_path = export_imagenet_lite0(args.out, precision=args.precision)
    except (WeightsNotFoundError, ExportError) as error:
        raise CommandError(str(error)) from None
    print(f"wrote {card_path}")
    return EXIT_OK


def _training_missing(error: ImportError) -> str:
    return (
        f"this command needs the training extra ({error.name or error} is not installed): "
        'pip install -e ".[train]"'
    )


# --- runs ----------------------------------------------------------------------------------


def cmd_runs(args: argparse.Namespace) -> int:
    from pathlib import Path

    from cvplay.runs import discover_runs, runs_table

    runs = discover_runs()
    if args.bundle:
        from cvplay.bundle import bundle_bytes

        chosen = [run for run in runs if run.name == args.bundle]
        if not chosen:
            raise CommandError(f"no training run named {args.bundle!r}; `python -m cvplay runs` lists them")
        out = Path(args.out or f"{args.bundle}.zip")
        out.write_bytes(bundle_bytes(chosen[0]))
        print(f"wrote {out}")
        return EXIT_OK
    table = runs_table(runs)
    if args.format == "json":
        print(table.to_json(orient="records", indent=2))
    elif table.empty:
        print("No training runs found.")
    else:
        print(table.drop(columns=["folder"]).to_string(index=False))
    return EXIT_OK


def add_runs_parser(commands) -> argparse.ArgumentParser:
    runs = commands.add_parser("runs", help="list training runs; --bundle NAME writes its Download-everything zip")
    runs.add_argument("--format", choices=["table", "json"], default="table")
    runs.add_argument("--bundle", metavar="NAME", help="write the run's zip (.tflite + card, .keras, labels, reports, predict.py)")
    runs.add_argument("--out", metavar="ZIP", help="where --bundle writes (default: NAME.zip)")
    runs.set_defaults(handler=cmd_runs)
    return runs


# --- parser --------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m cvplay", description="cvplay: computer vision playground")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    models = commands.add_parser("models", help="list installed models")
    models.add_argument("--format", choices=["table", "json"], default="table")
    models.set_defaults(handler=cmd_models)

    predict = commands.add_parser("predict", help="classify images (paths or http/https URLs)")
    predict.add_argument("--model", default=DEFAULT_MODEL, help=f"model name or path (default: {DEFAULT_MODEL})")
    predict.add_argument("--top", type=int, default=5, help="how many classes to show (default: 5)")
    predict.add_argument("--format", choices=["table", "json", "csv"], default="table")
    predict.add_argument("inputs", nargs="+", metavar="PATH_OR_URL")
    predict.set_defaults(handler=cmd_predict)

    export = commands.add_parser("export", help="rebuild a shipped .tflite model (training extra)")
    export.add_argument("model", choices=["imagenet-lite0"])
    export.add_argument("--out", default="models", help="output folder (default: models)")
    export.add_argument("--precision", choices=["fp32", "fp16"], default="fp16",
                        help="fp16 (default) is what ships: half the size, same top-1 (models/README.md)")
    export.set_defaults(handler=cmd_export)

    from cvplay.evaluate import add_evaluate_parser
    from cvplay.training.cli_train import add_train_parser

    add_train_parser(commands)
    add_evaluate_parser(commands)
    add_runs_parser(commands)

    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except _known_errors() as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
