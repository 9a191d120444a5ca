"""The ``rmlearn`` command: the in-class demo, training and scoring, and opening the course.

    rmlearn demo                       train the tiny reward model and show what it learned (< 1 min)
    rmlearn train DATA.jsonl --out DIR train a reward model on your own preference file
    rmlearn score DIR --prompt P --response R [--response R2 …]
    rmlearn lessons                    open the lessons in JupyterLab
    rmlearn course init DIR            write an nbgrader course directory for instructors
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path


def _demo(args: argparse.Namespace) -> None:
    from . import PASSWORD_RESET, RewardModel, course_tokenizer, evaluate, tiny_backbone, train_reward_model
    from .data import HELPFUL_FOR
    from .plots import plot_history
    from .zoo import N_PAIRS, course_data

    start = time.perf_counter()
    tokenizer = course_tokenizer()
    train, test = course_data(n_pairs=args.pairs or N_PAIRS, seed=args.seed)
    model = RewardModel(tiny_backbone(seed=args.seed), seed=args.seed)
    print(f"Training a {sum(p.numel() for p in model.parameters()):,}-parameter reward model "
          f"on {len(train)} preference pairs (seed {args.seed})")
    history = train_reward_model(model, tokenizer, train, epochs=args.epochs, seed=args.seed)
    metrics = evaluate(model, tokenizer, test)
    print(f"\nHeld-out pairs ranked correctly: {metrics['accuracy']:.1%} of {metrics['num_pairs']} "
          f"(mean gap r_chosen − r_rejected = {metrics['mean_gap']:.2f})")
    pair = PASSWORD_RESET
    r_chosen, r_rejected = model.score([pair.prompt] * 2, [pair.chosen, pair.rejected], tokenizer).tolist()
    print(f"\nPrompt: {pair.prompt}")
    print(f"  {r_chosen:+.3f}  {pair.chosen}")
    print(f"  {r_rejected:+.3f}  {pair.rejected}")
    verdict = "prefers" if r_chosen > r_rejected else "does NOT prefer"
    print(f"The model {verdict} the answer the annotators chose.")
    own, other = HELPFUL_FOR[pair.prompt][0], HELPFUL_FOR["The app keeps crashing."][0]
    answers = [f"{own}, kind regards.", f"{other}, kind regards."]
    r_own, r_other = model.score([pair.prompt] * 2, answers, tokenizer).tolist()
    print("\nThe same prompt, a good answer to it and a good answer to another question:")
    print(f"  {r_own:+.3f}  {answers[0]}")
    print(f"  {r_other:+.3f}  {answers[1]}")
    if r_own > r_other:
        print("The model reads the question: the answer to this question scores higher.")
    else:
        print("The model does NOT read the question: the answer to another question scores as high.")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    plot_history(history).savefig(out / "training.png", dpi=120)
    print(f"\nTraining curves: {out / 'training.png'}   ({time.perf_counter() - start:.1f} s in all)")


def _load_tokenizer(directory: Path | None, backbone: str | None):
    if directory is not None and (directory / "tokenizer.json").exists():
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(str(directory))
    if backbone:
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(backbone)
    from . import course_tokenizer

    return course_tokenizer()


def _train(args: argparse.Namespace) -> None:
    from . import (
        RewardModel,
        evaluate,
        load_backbone,
        load_preferences,
        split,
        tiny_backbone,
        train_reward_model,
    )
    from .plots import plot_history

    data = load_preferences(args.data)
    train, test = split(data, args.test_fraction, args.seed) if len(data) >= 5 else (data, [])
    tokenizer = _load_tokenizer(None, args.backbone)
    backbone = load_backbone(args.backbone) if args.backbone else tiny_backbone(seed=args.seed)
    model = RewardModel(backbone, pooling=args.pooling, seed=args.seed)
    print(f"{len(train)} training and {len(test)} held-out examples from {args.data}")
    history = train_reward_model(model, tokenizer, train, epochs=args.epochs, batch_size=args.batch_size,
                                 lr=args.lr, loss=args.loss, margin=args.margin,
                                 center_coef=args.center_coef, seed=args.seed)
    out = model.save_pretrained(args.out, tokenizer=tokenizer)
    metrics = {"train_loss_last": history.loss[-1], "seconds": history.seconds}
    if test:
        metrics.update({f"test_{k}": v for k, v in evaluate(model, tokenizer, test).items()})
        print(f"Held-out accuracy: {metrics['test_accuracy']:.1%}")
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    plot_history(history).savefig(out / "training.png", dpi=120)
    print(f"Saved the model, tokenizer, metrics.json and training.png to {out}")


def _score(args: argparse.Namespace) -> None:
    from . import RewardModel

    directory = Path(args.model)
    model = RewardModel.from_pretrained(directory)
    tokenizer = _load_tokenizer(directory, None)
    scores = model.score(args.prompt, args.response, tokenizer)
    for value, response in zip(scores.tolist(), args.response):
        print(f"{value:+.4f}\t{response}")


def _lessons(args: argparse.Namespace) -> None:
    from .course import course_path

    lessons = course_path("lessons")
    assets = Path(__file__).resolve().parent / "assets"
    extra = args.jupyter_args[1:] if args.jupyter_args[:1] == ["--"] else args.jupyter_args

    def add_path(variable: str, folder: Path) -> None:  # for the server we start, and its kernels
        os.environ[variable] = os.pathsep.join([str(folder), *filter(None, os.environ.get(variable, "").split(os.pathsep))])

    if args.slides:  # Voila's reveal slides with every asset served locally (docs/voila.md)
        found = sorted(lessons.glob(f"{args.slides}*.ipynb")) if args.slides[:2].isdigit() else []
        if len(found) != 1:
            names = ", ".join(p.stem for p in sorted(lessons.glob("[0-9][0-9]_*.ipynb")))
            raise ValueError(f"--slides {args.slides!r} names no single lesson; use a number or a name: {names}")
        add_path("JUPYTER_PATH", assets / "jupyter_share")  # the rmlearn-reveal Voila template
        command = [sys.executable, "-m", "voila", str(found[0]), "--template=rmlearn-reveal", *extra]
        print("Presenting", found[0].name, "as slides with Voila (Ctrl+C to stop)", flush=True)
    else:
        command = [sys.executable, "-m", "jupyter", "lab", str(lessons), *extra]
        if hasattr(os, "geteuid") and os.geteuid() == 0:  # e.g. a container: Jupyter refuses root otherwise
            command.append("--allow-root")
        add_path("JUPYTER_CONFIG_PATH", assets / "jupyter_lessons")  # nbgrader's authoring UI off
        print("Opening", lessons, "in JupyterLab (Ctrl+C to stop)", flush=True)
    if args.no_browser:
        command.append("--no-browser")
    os.execv(sys.executable, command)  # become the server: no child process to leave behind


def _course(args: argparse.Namespace) -> None:
    from .course import init_course, next_steps

    try:
        directory = init_course(Path(args.directory), force=args.force)
    except FileExistsError as err:
        raise FileExistsError(f"{err} (on the command line: --force)") from None
    print(next_steps(directory))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rmlearn", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)

    demo = commands.add_parser("demo", help="train the tiny reward model and show its scores")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--epochs", type=int, default=4)
    demo.add_argument("--pairs", type=int, default=None,
                      help="synthetic preference pairs to generate (default: the course model's 1500)")
    demo.add_argument("--out", default="rmlearn-demo", help="folder for the training plot")
    demo.set_defaults(run=_demo)

    train = commands.add_parser("train", help="train a reward model on a JSONL preference file")
    train.add_argument("data", help="JSONL: prompt/chosen/rejected, implicit, conversational or ranked")
    train.add_argument("--out", required=True, help="folder to save the trained model in")
    train.add_argument("--backbone", help="local directory or hub id of a decoder (default: tiny course model)")
    train.add_argument("--pooling", choices=["eos", "mean", "last"], default="eos")
    train.add_argument("--loss", choices=["pairwise", "listwise", "plackett_luce"], default="pairwise")
    train.add_argument("--epochs", type=int, default=4)
    train.add_argument("--batch-size", type=int, default=16)
    train.add_argument("--lr", type=float, default=3e-3)
    train.add_argument("--margin", type=float, default=0.0)
    train.add_argument("--center-coef", type=float, default=0.0)
    train.add_argument("--test-fraction", type=float, default=0.2)
    train.add_argument("--seed", type=int, default=0)
    train.set_defaults(run=_train)

    score = commands.add_parser("score", help="score responses with a saved reward model")
    score.add_argument("model", help="folder written by `rmlearn train` or RewardModel.save_pretrained")
    score.add_argument("--prompt", required=True)
    score.add_argument("--response", required=True, action="append", help="repeat for several responses")
    score.set_defaults(run=_score)

    lessons = commands.add_parser("lessons", help="open the course lessons in JupyterLab")
    lessons.add_argument("--no-browser", action="store_true")
    lessons.add_argument("--slides", metavar="LESSON",
                         help="present one lesson as slides (Voila, works offline), e.g. --slides 05")
    lessons.add_argument("jupyter_args", nargs=argparse.REMAINDER,
                         help="passed on to `jupyter lab` (after --), e.g. -- --port=8890")
    lessons.set_defaults(run=_lessons)

    course = commands.add_parser("course", help="instructor tools")
    course_commands = course.add_subparsers(dest="course_command", required=True)
    init = course_commands.add_parser("init", help="write a ready nbgrader course directory")
    init.add_argument("directory")
    init.add_argument("--force", action="store_true", help="write into a non-empty directory")
    init.set_defaults(run=_course)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    from .data import DataError

    try:
        args.run(args)
    except (DataError, FileNotFoundError, FileExistsError, NotADirectoryError, ValueError) as err:
        print(f"rmlearn: error: {err}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
