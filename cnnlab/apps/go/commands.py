"""``cnnlab go train|evaluate|gtp|match|show``: the Go commands (``register(subparsers)``).

The handlers import their modules lazily, so that ``cnnlab --help`` stays fast (numba,
matplotlib). Errors a user can fix are ``CnnlabError``s: the main CLI prints
``cnnlab go: error: ...`` and exits 2.
"""

from __future__ import annotations

from cnnlab.lab.cli_conventions import number_flag

__all__ = ["register"]

TRAIN_DEFAULTS = {"k": 32, "layers": 6, "planes": "48", "pooling": False, "games": None,
                  "epochs": 1, "batch_size": 64, "lr": 1e-3, "seed": 0}


_positive_int = number_flag(int, 1)
_positive_float = number_flag(float, 0, low_open=True)


_non_negative_float = number_flag(float, 0)


def register(subparsers) -> None:
    """Add ``go`` and its sub-commands to an argparse sub-parser group."""
    go = subparsers.add_parser(
        "go", help="Go: AlphaGo's policy network: train, evaluate, play (GTP), referee, show",
        description="The Go application: train AlphaGo's policy network on game records, "
        "measure its move prediction, play through GTP, referee matches between GTP engines "
        "and draw what the network sees.")
    commands = go.add_subparsers(dest="go_command", metavar="COMMAND")
    go.set_defaults(func=lambda args: go.print_help() or 2)

    p = commands.add_parser("train", help="train alphago-policy on Fox pro + 9-dan games",
                            description="Train the policy network on ../shared/datasets/"
                            "go-fox-pro and go-fox-9d (whole games held out), with checkpoints "
                            "after every epoch and --resume; reports top-1 and top-5 on the "
                            "held-out Fox pro games.")
    p.add_argument("--k", type=_positive_int, help=f"filters per layer (default {TRAIN_DEFAULTS['k']})")
    p.add_argument("--layers", type=_positive_int,
                   help=f"convolutions, >= 2 (default {TRAIN_DEFAULTS['layers']}; the paper: 13)")
    p.add_argument("--planes", choices=("48", "raw"), help="input encoding: the 48 feature "
                   "planes or the 20 raw-board planes (default 48)")
    p.add_argument("--pooling", action="store_true", default=None,
                   help="insert one 2x2 max-pooling layer (upsampled before the output)")
    p.add_argument("--games", type=_positive_int, help="a seeded sample of this many training "
                   "games (default: all ~19,900)")
    p.add_argument("--epochs", type=_positive_int, help="epochs (default 1; with --resume: "
                   "the new total)")
    p.add_argument("--batch-size", type=_positive_int, help="positions per batch (default 64)")
    p.add_argument("--lr", type=_positive_float, help="Adam's learning rate (default 0.001)")
    p.add_argument("--seed", type=int, help="seed of the sample, the order and the symmetries")
    p.add_argument("--eval-games", type=_positive_int, default=None,
                   help="held-out Fox pro games measured at the end (default: all)")
    p.add_argument("--data-root", default="../shared/datasets",
                   help="the datasets folder (default ../shared/datasets)")
    p.add_argument("--out", default="runs", help="folder of run folders (default runs)")
    p.add_argument("--name", default=None, help="run folder name (default alphago-policy-...-NNN)")
    p.add_argument("--resume", metavar="RUN", help="continue a run folder from its checkpoint")
    p.add_argument("--verbose", type=int, choices=(0, 1, 2), default=1)
    p.set_defaults(func=_train)

    p = commands.add_parser("evaluate", help="top-1/top-5 move prediction on SGF files",
                            description="Measure how often the policy's first (top-1) and "
                            "first five (top-5) moves are the move played, over every move of "
                            "the SGF files given (folders, zips, files).")
    p.add_argument("model", nargs="?", help="model file or run folder (default: the shipped model)")
    p.add_argument("--games", nargs="+", required=True, metavar="DIR_OR_FILE")
    p.add_argument("--batch-size", type=_positive_int, default=256)
    p.set_defaults(func=_evaluate)

    p = commands.add_parser("gtp", help="a GTP v2 engine on stdin/stdout",
                            description="Play Go through the Go Text Protocol, version 2 "
                            "(usable from any Go GUI or referee).")
    p.add_argument("model", nargs="?", help="model file or run folder (default: the shipped model)")
    p.add_argument("--temperature", type=_non_negative_float, default=0.0,
                   help="sample moves with probabilities p^(1/T) (default 0: the most probable)")
    p.add_argument("--seed", type=int, default=0, help="seed of the sampling")
    p.add_argument("--resign-below", type=_non_negative_float, default=0.0,
                   help="resign when the best sensible move's probability is below this "
                   "(default 0: never resign)")
    p.set_defaults(func=_gtp)

    p = commands.add_parser("match", help="referee games between two GTP engines",
                            description="Play two GTP engines against each other (colours "
                            "alternate), apply the rules, score (Tromp-Taylor area), write each "
                            "game as SGF and report the win rate with a 95%% Wilson interval.")
    p.add_argument("--black", required=True, help="the first engine's command line "
                   "(black in the odd games)")
    p.add_argument("--white", required=True, help="the second engine's command line")
    p.add_argument("--games", type=_positive_int, default=2)
    p.add_argument("--komi", type=float, default=7.5)
    p.add_argument("--max-moves", type=_positive_int, default=400,
                   help="a game still running after this many moves is scored as it stands")
    p.add_argument("--timeout", type=_positive_float, default=60.0,
                   help="seconds an engine may take for one answer (default 60)")
    p.add_argument("--sgf-dir", default=None, help="write every game here as SGF")
    p.add_argument("--dead-stones", choices=("ask", "alive"), default="ask",
                   help="ask: settle dead stones with an engine's final_status_list (GNU Go "
                   "has it; slow); alive: every stone counts as alive (default ask)")
    p.set_defaults(func=_match)

    p = commands.add_parser("show", help="the policy's probabilities over a board, as a PNG",
                            description="Draw the board of an SGF game before move N with the "
                            "policy's probabilities as a heat map over the empty points and the "
                            "move actually played marked.")
    p.add_argument("sgf", help="an SGF file")
    p.add_argument("--move", type=int, default=None,
                   help="the position before move N (1 = the first; default: the middle)")
    p.add_argument("--model", default=None, help="model file or run folder (default: shipped)")
    p.add_argument("--out", required=True, help="the PNG to write")
    p.set_defaults(func=_show)


def _train(args) -> int:
    from cnnlab.apps.go.train import train_command

    args.explicit = {}
    for name, default in TRAIN_DEFAULTS.items():
        value = getattr(args, name)
        args.explicit[name] = value is not None
        setattr(args, name, default if value is None else value)
    return train_command(args)


def _evaluate(args) -> int:
    from cnnlab.apps.go.evaluate import evaluate_command

    return evaluate_command(args)


def _gtp(args) -> int:
    from cnnlab.apps.go.gtp import gtp_command

    return gtp_command(args)


def _match(args) -> int:
    from cnnlab.apps.go.match import match_command

    return match_command(args)


def _show(args) -> int:
    from cnnlab.apps.go.show import show_command

    return show_command(args)
