"""``python -m cvplay train``: the trainer on the command line.

Importing this module does not import TensorFlow (the CLI builds its parser on every call);
the trainer is imported when the command runs.
"""

from __future__ import annotations

import argparse
import shlex
import sys

from cvplay import augment

BACKBONE_CHOICES = ("efficientnet-lite0", "efficientnet-lite2", "efficientnet-b0", "resnet50", "inception-v3",
                    "mobilenet-v2", "small-cnn")


def _print_event(event: dict) -> None:
    message = event.get("message")
    if message:
        print(message, flush=True)


def cmd_train(args: argparse.Namespace) -> int:
    from cvplay.errors import CommandError

    try:
        from cvplay.training import trainer
        from cvplay.training.backbones import BackboneError
        from cvplay.training.efficientnet_lite import WeightsNotFoundError
        import tensorflow  # noqa: F401  (fail early, with the install hint)
    except ImportError as error:
        raise CommandError(
            f"training needs the training extra ({error.name or error} is not installed): pip install -e \".[train]\""
        ) from None
    config = trainer.TrainConfig(
        data=args.data,
        out=args.out,
        backbone=args.backbone,
        epochs=args.epochs,
        image_size=args.image_size,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        fine_tune_epochs=args.fine_tune_epochs,
        fine_tune_blocks=args.fine_tune_blocks,
        fine_tune_learning_rate=args.fine_tune_learning_rate,
        augment=args.augment,
        cache_features=True if args.cache_features else None,
        cache_blocks=args.cache_blocks,
        feature_shift=args.feature_shift,
        average_flip=args.average_flip,
        seed=args.seed,
        val_fraction=args.val_fraction,
        test_fraction=args.test_fraction,
        crop_fraction=args.crop_fraction,
        max_per_class=args.max_per_class,
        name=args.name,
        weights=args.weights,
        precision=args.precision,
        patience=args.patience,
        lr_schedule=args.lr_schedule,
        monitor=args.monitor,
        tensorboard=args.tensorboard,
        mlflow=args.mlflow,
        command=shlex.join(["python", "-m", "cvplay", *sys.argv[1:]]) if sys.argv[1:2] == ["train"] else None,
    )
    try:
        result = trainer.train(config, progress=_print_event)
    except (trainer.TrainError, BackboneError, WeightsNotFoundError) as error:
        raise CommandError(str(error)) from None
    print(f"wrote {result.model_path}")
    print(f"      {result.card_path}")
    what, n = ("held-out test", result.n_test) if result.metrics_split == "test" else ("validation", result.n_val)
    print(f"{what} top-1 {result.metrics['top1']:.4f}  top-5 {result.metrics['top5']:.4f}  "
          f"({n} images)  {result.seconds:.1f} s")
    return 0


def add_train_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``train`` on the CLI's sub-command parsers."""
    p = subparsers.add_parser("train", help="train a classifier on your images (transfer learning; training extra)")
    p.add_argument("--data", required=True, help="folder of class folders, .zip of one, CIFAR-100 source or .npz")
    p.add_argument("--backbone", choices=BACKBONE_CHOICES, default="efficientnet-lite0",
                   help="efficientnet-lite0 (default) and efficientnet-lite2 (260 px): offline ImageNet weights; "
                   "efficientnet-b0, resnet50, inception-v3 (299 px), mobilenet-v2: keras.applications, whose ImageNet "
                   "weights Keras downloads (or --weights PATH); small-cnn: from scratch")
    p.add_argument("--epochs", type=int, default=10, help="stage 1 epochs: the head (whole model for small-cnn)")
    p.add_argument("--out", default=None, help="run folder (default: the user models folder / NAME)")
    p.add_argument("--image-size", type=int, default=None, help="square input size (default: the backbone's)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--learning-rate", type=float, default=1e-3, help="stage 1 learning rate; stage 2 uses a tenth")
    p.add_argument("--fine-tune-epochs", type=int, default=3, help="stage 2 epochs (0: no fine-tuning)")
    p.add_argument("--fine-tune-blocks", type=int, default=2, help="top backbone blocks to unfreeze in stage 2")
    p.add_argument("--fine-tune-learning-rate", type=float, default=None,
                   help="stage 2 learning rate (default: a tenth of --learning-rate)")
    p.add_argument("--augment", default=augment.DEFAULT_PRESET,
                   help=f"preset ({', '.join(augment.PRESETS)}), a policy JSON file from the Augmentation page, "
                   f"or none (default: {augment.DEFAULT_PRESET})")
    p.add_argument("--cache-features", action="store_true",
                   help="train the head on cached backbone features even with augmentation (stage 2 still augments)")
    p.add_argument("--cache-blocks", action="store_true",
                   help="compute the frozen lower blocks' outputs once and train the top --fine-tune-blocks blocks "
                   "and the head on them: partial fine-tuning a CPU can afford (only flips are augmented)")
    p.add_argument("--feature-shift", type=int, default=0,
                   help="with --cache-blocks: shift the cached maps by up to N cells at random (N x 16 px at stride 16)")
    p.add_argument("--average-flip", action="store_true",
                   help="predict each image and its mirror image and average them (twice the serving time); "
                   "the card says so and its figures are measured that way")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--val-fraction", type=float, default=0.2, help="validation share (early stopping, best epoch)")
    p.add_argument("--test-fraction", type=float, default=0.0,
                   help="held-out test share, never used for training or model selection (default 0: none)")
    p.add_argument("--crop-fraction", type=float, default=None,
                   help="centre-crop share of the shorter side (default: the backbone's; 1.0 keeps the whole square)")
    p.add_argument("--max-per-class", type=int, default=None)
    p.add_argument("--name", default=None, help="model name (default: DATA-BACKBONE)")
    p.add_argument("--weights", default=None, help="local weights file: the .h5 Keras would download for a keras.applications backbone, "
                   "or a .pth for efficientnet-lite*")
    p.add_argument("--precision", choices=["fp32", "fp16", "int8"], default="fp32",
                   help=".tflite precision; int8: full-integer quantization calibrated on 200 training images")
    p.add_argument("--patience", type=int, default=3, help="early stopping patience (epochs)")
    p.add_argument("--monitor", choices=["val_loss", "val_accuracy"], default="val_loss",
                   help="what picks the best epoch, which early stopping restores (default val_loss)")
    p.add_argument("--lr-schedule", choices=["plateau", "cosine"], default="plateau",
                   help="plateau (default): cut the rate when val_loss stalls; cosine: decay it to 0 over each stage")
    p.add_argument("--tensorboard", nargs="?", const=True, default=False, metavar="DIR",
                   help="write TensorBoard logs (loss, accuracy per epoch) to DIR (default: RUN_FOLDER/tensorboard)")
    p.add_argument("--mlflow", nargs="?", const=True, default=False, metavar="URI",
                   help="log params, per-epoch metrics and the model files to MLflow (the mlflow extra); URI default: "
                   "$MLFLOW_TRACKING_URI, else a local file store in the runs folder")
    p.set_defaults(handler=cmd_train)
    return p
