"""``course experiment ...``: notebook 10's experiment, and the course checkpoint, from a shell.

- ``course experiment pretraining --categories A B --budgets 2 4 8 16 --seeds 5 --out FILE``
  runs :func:`course_lib.experiment.run` (every arm on the same labelled draws) and writes one
  CSV row per arm, budget and seed, then prints the table of notebook 10.
- ``course experiment pretrain --profile checkpoint --out DIR`` pretrains the masked-LM encoder
  with the course's recipe and writes its provenance: the command that made the checkpoint.

Keras is imported only when a command runs, so ``course --help`` stays fast.
"""

from __future__ import annotations

import os

import numpy as np

from .experiment import ARMS, format_table, parse_budget, run, write_csv
from .pretraining import (
    course_checkpoint,
    load_or_pretrain,
    pretrain,
    pretraining_meta,
)
from .recipe import PROFILES, config

__all__ = ["add_parser", "cmd_pretrain", "cmd_pretraining"]


def add_parser(subparsers) -> None:
    """Add ``experiment pretraining`` and ``experiment pretrain`` to the ``course`` command."""
    p = subparsers.add_parser("experiment", help="reproduce a notebook's experiment from a shell")
    inner = p.add_subparsers(dest="experiment", metavar="EXPERIMENT", required=True)
    q = inner.add_parser(
        "pretraining",
        help="notebook 10: TF-IDF, LSA, scratch, probe and fine-tuned across label budgets",
        description="Take the course's pretrained encoder (or pretrain one), then train each arm "
                    "on k labelled articles per class and write test accuracy per arm, budget "
                    "and seed as CSV. Test articles come from the corpus-wide test reserve, "
                    "which no pretraining ever reads.")
    q.add_argument("--categories", nargs="+", default=["entertainment", "tech"],
                   help="two or more of: business entertainment politics sport(s) tech")
    q.add_argument("--budgets", nargs="+", default=["2", "4", "8", "16", "all"],
                   help="labels per class; 'all' = the whole labelled pool")
    q.add_argument("--seeds", type=int, default=None,
                   help="seeds per budget (default: the profile's)")
    q.add_argument("--arms", nargs="+", default=list(ARMS), choices=ARMS)
    q.add_argument("--profile", choices=PROFILES, default=None,
                   help="sizes of the classifiers (and of a fresh pretraining run): quick (CPU) "
                        "or full (GPU); default: chosen by hardware")
    how = q.add_mutually_exclusive_group()
    how.add_argument("--pretrain", action="store_true",
                     help="pretrain an encoder afresh with the profile's recipe, instead of "
                          "using the course checkpoint")
    how.add_argument("--weights", default=None,
                     help="a folder with an encoder (e.g. one notebook 09 saved, or made by "
                          "`course experiment pretrain`); pretrained and saved there if empty")
    q.add_argument("--out", required=True, help="CSV file to write")
    q.set_defaults(func=cmd_pretraining)

    r = inner.add_parser(
        "pretrain", help="pretrain an encoder with the course's recipe (makes the checkpoint)",
        description="Pretrain the masked-LM encoder on the unlabeled BBC News articles (never "
                    "the test reserve) and save it with a provenance file. With --profile "
                    "checkpoint this is the command that made the course checkpoint.")
    r.add_argument("--profile", choices=PROFILES, default="checkpoint")
    r.add_argument("--epochs", type=int, default=None, help="override the profile's")
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--out", required=True, help="folder to write the encoder into")
    r.set_defaults(func=cmd_pretrain)


def cmd_pretraining(args) -> int:
    """Handler of ``course experiment pretraining``; returns the exit status."""
    from . import bbc
    from .pretraining import CheckpointError

    try:
        budgets = [parse_budget(b) for b in args.budgets]
    except ValueError as exc:
        print(f"error: {exc}")
        return 2
    cfg = config(args.profile)
    try:
        split = bbc.split(args.categories, seed=cfg.split_seed)
    except (bbc.CorpusError, ValueError) as exc:
        print(f"error: {exc}")
        return 2
    small = min(np.bincount(split.pool_labels))
    too_big = [k for k in budgets if k is not None and k > small]
    if too_big:
        print(f"error: budget(s) {too_big} exceed the {small} labelled articles of the smallest "
              "class in the pool.")
        return 2
    print(f"Categories {', '.join(split.categories)}: {len(split.pool_texts)} labelled, "
          f"{len(split.test_texts)} test, {len(split.unlabeled)} unlabeled articles; "
          f"profile {cfg.profile}.", flush=True)
    pretrained = None
    if {"probe", "finetune"} & set(args.arms):
        if getattr(args, "weights", None):
            pretrained = load_or_pretrain(args.weights, split.unlabeled, cfg)
        elif getattr(args, "pretrain", False):
            pretrained = pretrain(split.unlabeled, cfg, meta=pretraining_meta())
        else:
            try:
                pretrained = course_checkpoint()
            except CheckpointError as exc:
                print(f"error: {exc}")
                return 2
            print("Using the course checkpoint (pass --pretrain to pretrain afresh).")
        print(f"Pretraining: {pretrained.seconds:.1f} s, {pretrained.tokens:,} tokens, "
              f"{pretrained.flops:.2e} FLOPs.")

    def progress(row):
        print(f"  {row.arm:<9} k={row.budget:<4} seed {row.seed}: {100 * row.accuracy:5.1f} % "
              f"({row.seconds:.1f} s)", flush=True)

    seeds = args.seeds if args.seeds is not None else cfg.seeds
    result = run(split, pretrained, cfg, budgets=budgets, seeds=seeds, arms=args.arms,
                 progress=progress)
    path = write_csv(result.rows, args.out)
    print()
    print(format_table(result.rows))
    print(f"\nWrote {len(result.rows)} rows to {path}.")
    return 0


def cmd_pretrain(args) -> int:
    """Handler of ``course experiment pretrain``: pretrain, save, write the provenance."""
    from . import bbc, device
    from .pretraining import save_pretrained, write_provenance

    overrides = {"epochs": args.epochs} if args.epochs else {}
    cfg = config(args.profile, **overrides)
    split = bbc.split(("entertainment", "tech"))  # every split has the same unlabeled texts
    print(f"Pretraining on {len(split.unlabeled)} unlabeled articles, profile {cfg.profile}, "
          f"{cfg.epochs} epochs, seed {args.seed}.", flush=True)
    p = pretrain(split.unlabeled, cfg, seed=args.seed, meta=pretraining_meta())
    save_pretrained(p, args.out)
    gpus = device.gpus()
    where = ", ".join(g.name for g in gpus) if gpus else f"CPU ({os.cpu_count()} cores)"
    command = (f"course experiment pretrain --profile {args.profile} --seed {args.seed}"
               + (f" --epochs {args.epochs}" if args.epochs else "") + " --out DIR")
    path = write_provenance(p, args.out, where, command, seed=args.seed)
    print(f"Saved the encoder and {path} ({p.seconds / 60:.1f} min, {p.tokens:,} tokens).")
    return 0
