"""The ``rmlearn`` command: the in-class demo, training and scoring, and opening the course.

    rmlearn demo                       train the tiny reward model and show what it learned (< 1 min)
    rmlearn train DATA.jsonl --out DIR train a reward model on your own preference file
    rmlearn score DIR --prompt P --response R [--response R2 …]   or   rmlearn score DIR --jsonl FILE
    rmlearn eval DIR DATA.jsonl        accuracy, mean gap, accuracy by length, calibration (ECE), best-of-K
    rmlearn lessons                    open the lessons in JupyterLab
    rmlearn course init DIR            write an nbgrader course directory for instructors
    rmlearn course autograde A [--workers N]   autograde the whole class in parallel
    rmlearn course report A [--plot F]        item analysis after grading
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from .config import (
    DEFAULT_POOLING,
    LOSSES,
    POOLINGS,
    PRECISIONS,
    RENAMED_LOSSES,
    SCHEDULES,
    TRUNCATIONS,
    TrainConfig,
)
from .data import MAX_CHARS


def _demo(args: argparse.Namespace) -> None:
    from . import RewardModel, course_tokenizer, evaluate, tiny_backbone, train_reward_model
    from .plots import plot_history
    from .synthetic import HELPFUL_FOR, UNHELPFUL, num_words
    from .zoo import N_PAIRS, course_data

    start = time.perf_counter()
    tokenizer = course_tokenizer()
    train, test = course_data(n_pairs=args.pairs or N_PAIRS, seed=args.seed)
    model = RewardModel(tiny_backbone(seed=args.seed), seed=args.seed)
    print(f"Training a {sum(p.numel() for p in model.parameters()):,}-parameter reward model "
          f"on {len(train)} preference pairs (seed {args.seed})")
    history = train_reward_model(model, tokenizer, train, seed=args.seed,
                                 **({"epochs": args.epochs} if args.epochs is not None else {}))
    model.eval()
    metrics = evaluate(model, tokenizer, test)
    print(f"\nHeld-out pairs ranked correctly: {metrics['accuracy']:.1%} of {metrics['num_pairs']} "
          f"(mean gap r_chosen − r_rejected = {metrics['mean_gap']:.2f})")
    prompt = "How do I reset my password?"
    # written as the synthetic training data writes its answers: lower case, the content phrase first
    good, bad = f"{HELPFUL_FOR[prompt][0]}, kind regards.", f"{UNHELPFUL[0]}, kind regards."
    r_good, r_bad = model.score([prompt] * 2, [good, bad], tokenizer).tolist()
    print(f"\nPrompt: {prompt}   (two answers of {num_words(good)} words each: length cannot decide)")
    print(f"  {r_good:+.3f}  {good}")
    print(f"  {r_bad:+.3f}  {bad}")
    print(f"The model {'prefers' if r_good > r_bad else 'does NOT prefer'} the helpful answer.")
    others = [f"{phrases[0]}, kind regards." for q, phrases in HELPFUL_FOR.items() if q != prompt]
    r_others = model.score([prompt] * len(others), others, tokenizer).tolist()
    print(f"\nThe same prompt with good answers of the same length to the {len(others)} other questions:")
    for r, answer in sorted(zip(r_others, others), reverse=True):
        print(f"  {r:+.3f}  {answer}")
    beaten = sum(r_good > r for r in r_others)
    if beaten == len(others):
        print(f"The model reads the question: its own answer ({r_good:+.3f}) beats all {len(others)} of them.")
    else:
        print(f"The model does NOT fully read the question: its own answer ({r_good:+.3f}) beats only "
              f"{beaten} of {len(others)}.")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    plot_history(history).savefig(out / "training.png", dpi=120)
    print(f"\nTraining curves saved to {(out / 'training.png').resolve()}: the loss and the share of each batch's "
          f"pairs ranked right, per step ({history.loss[0]:.2f} → {history.loss[-1]:.4f} loss). "
          f"{time.perf_counter() - start:.1f} s in all.")


PRETRAINED_LR = 1e-5  # default lr for a pretrained backbone; the tiny course model uses TrainConfig's 3e-3


def _saved_tokenizer(directory: Path, tokenizer: str | None = None):
    """The tokenizer saved with a model (or ``tokenizer``, a path or hub id); never a silent default."""
    return _load_tokenizer(tokenizer or directory, "--tokenizer" if tokenizer else "model")


def _load_tokenizer(name: str | Path, flag: str):
    from .backbone import load_tokenizer

    try:
        return load_tokenizer(name)
    except FileNotFoundError as err:
        raise FileNotFoundError(f"{flag} {name}: {err}") from None
    except OSError as err:  # a hub id that is not there, or no network: say which flag named it
        raise FileNotFoundError(f"{flag} {name}: no such folder, and no hub model of that name could be "
                                f"loaded ({str(err).splitlines()[0]})") from None


def _train_tokenizer(args: argparse.Namespace):
    if args.tokenizer or args.backbone:
        return _load_tokenizer(args.tokenizer or args.backbone, "--tokenizer" if args.tokenizer else "--backbone")
    from . import course_tokenizer

    return course_tokenizer()


def _holds_reward_model(path: Path) -> bool:
    """Whether a folder holds a reward model (rmlearn's or any one-label sequence classifier)."""
    if (path / "rmlearn_config.json").is_file():
        return True
    config = path / "config.json"
    if not config.is_file():
        return False
    settings = json.loads(config.read_text())
    return "rmlearn" in settings or any(a.endswith("ForSequenceClassification") for a in settings.get("architectures") or [])


def _train_model(args: argparse.Namespace):
    import torch

    from . import RewardModel, load_backbone, tiny_backbone

    dtype = getattr(torch, PRECISIONS[args.dtype])
    if args.backbone and _holds_reward_model(Path(args.backbone)):  # go on training it: its head too
        model = RewardModel.from_pretrained(args.backbone, dtype=dtype)
        model.pooling = args.pooling or model.pooling
        return model.to(args.device)
    if args.backbone:
        try:
            backbone = load_backbone(args.backbone, dtype=dtype)
        except FileNotFoundError:
            raise
        except OSError as err:
            raise FileNotFoundError(f"--backbone {args.backbone}: no such folder, and no hub model of that name "
                                    f"could be loaded ({str(err).splitlines()[0]})") from None
    else:
        backbone = tiny_backbone(seed=args.seed).to(dtype)
    pooling = {"pooling": args.pooling} if args.pooling else {}  # none given: RewardModel's default
    return RewardModel(backbone, **pooling, seed=args.seed).to(args.device)


def _check_device(name: str) -> None:
    import torch

    try:
        device = torch.device(name)
    except RuntimeError as err:
        raise ValueError(f"--device {name!r}: {err}") from None
    available = {"cuda": torch.cuda.is_available, "mps": lambda: torch.backends.mps.is_available()}
    if device.type in available and not available[device.type]():
        raise ValueError(f"--device {name}: this torch ({torch.__version__}) cannot use {device.type.upper()} here"
                         + (" (a CPU-only build)" if device.type == "cuda" and torch.version.cuda is None else ""))


def _check_out(out: Path) -> None:
    """--out must be a folder we can write, checked before hours of training."""
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file, not a folder")
    existing = next(p for p in [out, *out.parents] if p.exists())
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise ValueError(f"--out {out}: cannot create or write there ({existing} is not a writable folder)")


# flags whose default is TrainConfig's own (None here: not given, so the library's default holds)
RECIPE_FLAGS = ("epochs", "batch_size", "margin", "center_coef", "grad_accum", "max_grad_norm", "lr_schedule",
                "warmup_steps", "warmup_ratio")


def _train_settings(args: argparse.Namespace) -> dict:
    """``train_reward_model``'s keywords from the flags, validated (``TrainConfig``) before anything loads."""
    recipe = {name: getattr(args, name) for name in RECIPE_FLAGS if getattr(args, name) is not None}
    if recipe.get("max_grad_norm") == 0:
        recipe["max_grad_norm"] = None  # --max-grad-norm 0: no clipping
    settings = dict(
        loss=args.loss, seed=args.seed, max_length=args.max_length, too_long=args.too_long,
        save_dir=args.out if args.save_every else None, save_every=args.save_every, threads=args.threads,
        gradient_checkpointing=args.gradient_checkpointing, **recipe,
        lr=args.lr if args.lr is not None else (PRETRAINED_LR if args.backbone else TrainConfig.lr))
    settings["loss"] = TrainConfig(**settings).loss  # an old name (--loss listwise) warns here, once
    if args.eval_split and not 0 < args.eval_split < 1:
        raise ValueError(f"--eval-split must be between 0 and 1, got {args.eval_split}")
    if args.max_chars < 1:
        raise ValueError(f"--max-chars must be a positive number, got {args.max_chars}")
    return settings


def _train(args: argparse.Namespace) -> None:
    settings = _train_settings(args)  # flags first: a typo costs no loading
    _check_device(args.device)
    _check_out(Path(args.out))
    from . import load_preferences, split, train_reward_model
    from .train import OPTIMIZER_FILE

    data = load_preferences(args.data, max_chars=args.max_chars)
    train, test = split(data, args.eval_split, args.seed) if args.eval_split and len(data) >= 5 else (data, [])
    if args.device.startswith("cuda") and ":" not in args.device and "LOCAL_RANK" in os.environ:
        args.device = f"cuda:{os.environ['LOCAL_RANK']}"  # under `accelerate launch`: this process's GPU
    tokenizer = _train_tokenizer(args)
    model = _train_model(args)
    if args.backbone and (Path(args.backbone) / OPTIMIZER_FILE).is_file():
        settings["resume_from"] = args.backbone
    first = int(os.environ.get("RANK", "0")) == 0  # under `accelerate launch` the first process reports and saves
    if first and args.backbone and _holds_reward_model(Path(args.backbone)):
        print(f"resuming from the reward model in {args.backbone}: its head"
              + (" and optimizer state" if "resume_from" in settings else ""))
    if first:
        print(f"{len(train)} training and {len(test)} held-out examples from {args.data}")
    history = train_reward_model(model, tokenizer, train, eval_data=test or None, **settings)
    try:
        if first:
            _report_and_save(args, model, tokenizer, history, test)
    finally:
        _leave_process_group()


def _leave_process_group() -> None:
    """Under ``accelerate launch`` / ``torchrun``: wait until the first process has saved, then close
    the process group. A process that exits with it open aborts ("terminate called without an
    active exception"), and the launcher then kills the others, the saving one included."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def _report_and_save(args: argparse.Namespace, model, tokenizer, history, test) -> None:
    from . import evaluate
    from .plots import plot_history
    from .train import save_optimizer_state

    print(f"lr {history.config['lr']:g}, {history.threads} CPU thread(s), {history.optimizer_steps} optimizer steps "
          f"({len(history)} batches) in {history.seconds:.1f} s; final loss {history.loss[-1]:.4f}")
    if history.too_long:
        done = "truncated" if history.config["too_long"] == "truncate" else "dropped"
        print(f"{history.too_long} example(s) longer than max_length: {done}")
    for epoch, accuracy in enumerate(history.eval_accuracy, start=1):
        print(f"epoch {epoch}: held-out accuracy {accuracy:.1%}")
    out = model.save_pretrained(args.out, tokenizer=tokenizer)
    save_optimizer_state(out, history.optimizer_state)  # `--backbone OUT` resumes from it
    metrics = {"train_loss_last": history.loss[-1], "seconds": history.seconds, "too_long": history.too_long,
               "optimizer_steps": history.optimizer_steps, "eval_accuracy_per_epoch": history.eval_accuracy}
    if test:
        metrics.update({f"test_{k}": v for k, v in evaluate(model, tokenizer, test).items()})
        print(f"Held-out accuracy: {metrics['test_accuracy']:.1%}")
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    try:
        plot_history(history).savefig(out / "training.png", dpi=120)
        figure = " and training.png"
    except ModuleNotFoundError as err:  # matplotlib comes with the [course] extra, not with the library
        if (err.name or "").split(".")[0] != "matplotlib":
            raise
        figure = " (no training.png: drawing it needs matplotlib, pip install 'rmlearn[course]')"
    print(f"Saved the model, tokenizer, optimizer state, metrics.json{figure} to {out}")


def _load_model(args: argparse.Namespace):
    from . import RewardModel

    _check_device(args.device)
    directory = Path(args.model)
    model = RewardModel.from_pretrained(directory)
    return model.to(args.device), _saved_tokenizer(directory, args.tokenizer)


def _score_jsonl(model, tokenizer, path: Path, max_chars: int = MAX_CHARS) -> list[dict]:
    """Each line of ``path`` with its scores: ``score`` for a ``prompt``/``response`` row,
    ``score_chosen``/``score_rejected`` for a preference pair, ``scores`` (best → worst) for a ranking."""
    from .data import DataError, PreferencePair, parse_record, read_jsonl

    rows, items = [], []  # items: (row index, key, prompt, response)
    for number, record in read_jsonl(path, "JSONL file"):
        row = len(rows)
        rows.append(record)
        if isinstance(record, dict) and isinstance(record.get("response"), str):
            items.append((row, "score", str(record.get("prompt", "")), record["response"]))
            continue
        example = parse_record(record, (path, number), max_chars)
        if isinstance(example, PreferencePair):
            items += [(row, "score_chosen", example.prompt, example.chosen),
                      (row, "score_rejected", example.prompt, example.rejected)]
        else:
            items += [(row, ("scores", k), example.prompt, r) for k, r in enumerate(example.responses)]
    if not items:
        raise DataError(path, 0, "the file holds nothing to score")
    scores = model.score([i[2] for i in items], [i[3] for i in items], tokenizer).tolist()
    for (row, key, _, _), value in zip(items, scores, strict=True):
        if isinstance(key, tuple):
            rows[row].setdefault("scores", []).append(value)
        else:
            rows[row][key] = value
    return rows


def _score(args: argparse.Namespace) -> None:
    if bool(args.jsonl) == bool(args.response):
        raise ValueError("give either --jsonl FILE or --prompt P --response R")
    if args.response and args.prompt is None:
        raise ValueError("--response needs --prompt")
    model, tokenizer = _load_model(args)
    if args.response:
        scores = model.score(args.prompt, args.response, tokenizer)
        for value, response in zip(scores.tolist(), args.response):
            print(f"{value:+.4f}\t{response}")
        return
    rows = _score_jsonl(model, tokenizer, Path(args.jsonl), args.max_chars)
    text = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
        print(f"Scored {len(rows)} lines of {args.jsonl} into {args.out}")
    else:
        sys.stdout.write(text)


def _eval(args: argparse.Namespace) -> None:
    from . import load_preferences
    from .evaluation import eval_report

    model, tokenizer = _load_model(args)
    data = load_preferences(args.data, max_chars=args.max_chars)
    metrics = eval_report(model, tokenizer, data)
    if args.json:
        print(json.dumps(metrics, indent=2))
        return
    n_short = metrics["num_shorter_chosen"]
    print(f"pairs:                          {metrics['num_pairs']}")
    print(f"accuracy (r_chosen > r_rejected): {metrics['accuracy']:.1%}")
    print(f"mean gap r_chosen − r_rejected:   {metrics['mean_gap']:+.4f}")
    print("length-controlled accuracy:       " + (f"{metrics['length_controlled_accuracy']:.1%} on the "
          f"{n_short} pairs whose chosen response is the shorter one" if n_short else
          "n/a: in no pair is the chosen response the shorter one"))
    for side in ("longer", "shorter"):  # in words, as lesson 09 splits it
        value = metrics[f"accuracy_chosen_{side}"]
        print(f"accuracy, chosen is the {side + ':':8s}  " + ("n/a" if value != value else f"{value:.1%}"))
    print(f"calibration error (ECE of σ(Δ)):  {metrics['ece']:.3f}")
    best_of = next((k for k in metrics if k.startswith("best_of_")), None)
    if best_of:
        print(f"{best_of.replace('_', ' ').replace('accuracy', 'accuracy:'):33s}{metrics[best_of]:.1%} "
              f"(chance {metrics['chance']:.0%}; a tie for the top counts 1/number tied)")


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
    from .grading.instructor import init_course, next_steps

    try:
        directory = init_course(Path(args.directory), force=args.force, source=args.source)
    except FileExistsError as err:
        raise FileExistsError(f"{err} (on the command line: --force)") from None
    print(next_steps(directory))


def _course_autograde(args: argparse.Namespace) -> None:
    from .grading.parallel import autograde_class, summary

    start = time.perf_counter()
    results = autograde_class(args.assignment, args.root, args.workers, force=args.force,
                              nbgrader_args=[f"--{setting}" for setting in args.set], progress=not args.quiet)
    print(summary(results, time.perf_counter() - start))
    if not all(r.success for r in results):
        raise SystemExit(1)


def _add_course_autograde(course_commands) -> None:
    autograde = course_commands.add_parser(
        "autograde", help="nbgrader autograde for the whole class, several students at once")
    autograde.add_argument("assignment", help='assignment id, or a glob such as "*" (as for nbgrader)')
    autograde.add_argument("--root", default=".", help="the course directory (default: here)")
    autograde.add_argument("--workers", type=int, help="parallel graders (default: one per CPU)")
    autograde.add_argument("--force", action="store_true", help="regrade submissions graded before")
    autograde.add_argument("--quiet", action="store_true", help="no progress bar")
    autograde.add_argument("--set", action="append", default=[], metavar="Class.trait=VALUE",
                           help="an nbgrader setting, as --Class.trait=VALUE on nbgrader's command line; "
                                "repeatable, e.g. --set Execute.timeout=60")
    autograde.set_defaults(run=_course_autograde)


def _course_report(args: argparse.Namespace) -> None:
    from .grading.report import item_analysis

    analysis = item_analysis(args.root, args.assignment)
    print(analysis.text())
    if args.plot:
        print(f"figure: {analysis.plot(args.plot)}")


def _add_course_report(course_commands) -> None:
    report = course_commands.add_parser(
        "report", help="item analysis after grading: pass share per check, score histogram, common wrong answers")
    report.add_argument("assignment", help="assignment id")
    report.add_argument("--root", default=".", help="the course directory (default: here)")
    report.add_argument("--plot", metavar="FILE.png", help="also save a figure")
    report.set_defaults(run=_course_report)


def _threads(value: str) -> int | str:
    return value if value == "auto" else int(value)


def _add_max_chars(command) -> None:
    command.add_argument("--max-chars", type=int, default=MAX_CHARS,
                         help=f"longest text field accepted in the JSONL file (default {MAX_CHARS:,})")


def _parser() -> argparse.ArgumentParser:
    """The command line's flags: their choices and defaults are the library's (``rmlearn.config``),
    read without importing torch, so ``rmlearn --help`` answers at once.

    >>> _parser().parse_args(["train", "data.jsonl", "--out", "rm", "--loss", "all_pairs"]).loss
    'all_pairs'
    """
    recipe = TrainConfig()
    parser = argparse.ArgumentParser(prog="rmlearn", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)

    demo = commands.add_parser("demo", help="train the tiny reward model and show its scores")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--epochs", type=int, help=f"passes over the data (default {recipe.epochs})")
    demo.add_argument("--pairs", type=int, default=None,
                      help="synthetic preference pairs to generate (default: the course model's 1500)")
    demo.add_argument("--out", default="rmlearn-demo", help="folder for the training plot")
    demo.set_defaults(run=_demo)

    train = commands.add_parser("train", help="train a reward model on a JSONL preference file")
    train.add_argument("data", help="JSONL: prompt/chosen/rejected, implicit, conversational or ranked")
    train.add_argument("--out", required=True, help="folder to save the trained model in")
    train.add_argument("--backbone", help="local directory or hub id of a decoder (default: tiny course model); "
                       "a folder written by `rmlearn train` resumes it: head and optimizer state")
    train.add_argument("--tokenizer", help="tokenizer path or hub id (default: the backbone's, or the course's)")
    train.add_argument("--pooling", choices=POOLINGS, default=None,
                       help=f"default {DEFAULT_POOLING}; a reward model given as --backbone keeps its own")
    train.add_argument("--loss", choices=(*LOSSES, *RENAMED_LOSSES), default=recipe.loss,
                       help=f"default {recipe.loss}; one of {', '.join(LOSSES)} "
                       f"({', '.join(f'{old} = {new}' for old, new in RENAMED_LOSSES.items())}, deprecated)")
    train.add_argument("--epochs", type=int, help=f"passes over the data (default {recipe.epochs})")
    train.add_argument("--batch-size", type=int, help=f"pairs per batch (default {recipe.batch_size})")
    train.add_argument("--lr", type=float,
                       help=f"default: {PRETRAINED_LR:g} with --backbone, {recipe.lr:g} for the tiny model")
    train.add_argument("--margin", type=float, help=f"m in -log σ(r_c - r_r - m) (default {recipe.margin:g})")
    train.add_argument("--center-coef", type=float,
                       help=f"weight of the centering penalty (default {recipe.center_coef:g})")
    train.add_argument("--max-length", type=int, help="longest sequence in tokens (default: the backbone's)")
    train.add_argument("--too-long", choices=TRUNCATIONS, default=recipe.too_long,
                       help="what happens to longer pairs (truncate: cut the prompt's start, keep EOS)")
    train.add_argument("--dtype", choices=list(PRECISIONS), default="fp32",
                       help="load the backbone in this dtype; bf16/fp16 train with fp32 master weights")
    _add_max_chars(train)
    train.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, mps, …")
    train.add_argument("--grad-accum", type=int, help=f"batches per optimizer step (default {recipe.grad_accum})")
    train.add_argument("--max-grad-norm", type=float, help=f"clip the gradient norm (default {recipe.max_grad_norm}; 0: no clipping)")
    train.add_argument("--lr-schedule", choices=SCHEDULES,
                       help=f"after warm-up (default: {recipe.lr_schedule} decay to 0)")
    train.add_argument("--warmup-steps", type=int, help="optimizer steps of linear warm-up (default: --warmup-ratio)")
    train.add_argument("--warmup-ratio", type=float, help=f"warm-up as a share of all steps (default {recipe.warmup_ratio})")
    train.add_argument("--eval-split", "--test-fraction", type=float, default=0.2, dest="eval_split",
                       help="fraction held out, evaluated after every epoch (default 0.2; 0: none)")
    train.add_argument("--save-every", type=int, default=0, help="checkpoint every N optimizer steps into --out")
    train.add_argument("--threads", type=_threads, default="auto",
                       help="CPU threads running each batch's shards: auto (one per shard, at most the usable "
                            "cores) or N; the numbers do not depend on it")
    train.add_argument("--gradient-checkpointing", action="store_true",
                       help="recompute activations in the backward pass: less memory, ~30%% more time")
    train.add_argument("--seed", type=int, default=0)
    train.set_defaults(run=_train)

    score = commands.add_parser("score", help="score responses (or a JSONL file) with a saved reward model")
    score.add_argument("model", help="folder written by `rmlearn train` or RewardModel.save_pretrained")
    score.add_argument("--jsonl", help="score every line: prompt/response rows, preference pairs or rankings")
    score.add_argument("--out", help="with --jsonl: write the scored lines here (default: stdout)")
    score.add_argument("--prompt")
    score.add_argument("--response", action="append", help="repeat for several responses")
    score.add_argument("--tokenizer", help="tokenizer path or hub id (default: the one saved with the model)")
    _add_max_chars(score)
    score.add_argument("--device", default="cpu")
    score.set_defaults(run=_score)

    evaluation = commands.add_parser("eval", help="accuracy, mean gap and length-controlled accuracy on a file")
    evaluation.add_argument("model", help="folder written by `rmlearn train` or RewardModel.save_pretrained")
    evaluation.add_argument("data", help="JSONL preference file (any format `train` reads)")
    evaluation.add_argument("--tokenizer", help="tokenizer path or hub id (default: the one saved with the model)")
    _add_max_chars(evaluation)
    evaluation.add_argument("--device", default="cpu")
    evaluation.add_argument("--json", action="store_true", help="print all metrics as JSON")
    evaluation.set_defaults(run=_eval)

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
    init.add_argument("--from", dest="source", metavar="PATH",
                      help="the exercises/ folder of the rmlearn repository (default: the checkout's own)")
    init.set_defaults(run=_course)
    _add_course_autograde(course_commands)
    _add_course_report(course_commands)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    from .data import DataError

    try:
        args.run(args)
    except (DataError, OSError, ValueError, FloatingPointError) as err:
        print(f"rmlearn: error: {err}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
