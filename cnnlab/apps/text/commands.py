"""``cnnlab text train`` and ``cnnlab text predict``: ``register(subparsers)`` adds the group.

Errors are the main CLI's: ``cnnlab text: error: <message>`` and exit status 2 (``cnnlab.cli``
prints every ``CnnlabError`` and ``OSError`` that way); bad flags are argparse's errors.
The training code is imported when a command runs, so ``cnnlab --help`` stays fast.
"""

from __future__ import annotations

import sys
from pathlib import Path

from cnnlab.lab.cli_conventions import number_flag

__all__ = ["register"]


def register(subparsers) -> None:
    """Add ``cnnlab text {train,predict}`` to an argparse sub-parser group."""
    text = subparsers.add_parser(
        "text", help="Kim (2014)'s CNN for sentence classification (MR, TREC, SST-2, your data)",
        description="Kim's sentence CNN (CNN-rand): train with cross-validation over seeds, "
        "predict sentences and show the n-grams the filters fired on.")
    commands = text.add_subparsers(dest="text_command", metavar="{train,predict}")
    text.set_defaults(func=lambda args: (text.print_help(), 2)[1])

    p = commands.add_parser(
        "train", help="train over folds × seeds (resumable) and print mean ± std",
        description="Train Kim's CNN-rand. Each fold × seed is a unit with its own result file "
        "in the run folder (OUT/NAME, default runs/text-DATA); running the same command again "
        "continues with the units not yet done. Prints the test accuracy, mean ± std.")
    p.add_argument("--data", required=True,
                   help="mr, trec, sst2, or a folder with one text file per class "
                   "(one example per line, UTF-8)")
    p.add_argument("--data-dir", default=None,
                   help="folder holding rt-polarity/, trec/, sst/ (default: $CNNLAB_DATA, "
                   "then ../shared/datasets)")
    p.add_argument("--folds", type=number_flag(int, 2), default=10,
                   help="cross-validation folds for mr and folders (default 10)")
    p.add_argument("--seeds", type=number_flag(int, 1), default=5,
                   help="seeds 0..S-1 (default 5); asking a run for more seeds adds their units")
    p.add_argument("--epochs", type=number_flag(int, 1), default=25, help="epochs (default 25)")
    p.add_argument("--batch-size", type=number_flag(int, 1), default=50, help="default 50")
    p.add_argument("--optimizer", choices=("adadelta", "adam"), default="adadelta",
                   help="adadelta (Kim's: rho 0.95, eps 1e-6; default) or adam")
    p.add_argument("--lr", type=number_flag(float, 1e-12), default=None,
                   help="learning rate (default 1.0 for adadelta, 0.001 for adam)")
    p.add_argument("--min-count", type=number_flag(int, 1), default=1,
                   help="keep training words seen at least this often (default 1)")
    p.add_argument("--out", default="runs", help="folder of run folders (default runs)")
    p.add_argument("--name", default=None, help="run folder name (default text-DATA)")
    p.add_argument("--max-units", type=number_flag(int, 1), default=None,
                   help="train at most this many new units now (run the job in pieces)")
    p.add_argument("--verbose", action="store_true", help="a line per epoch")
    p.set_defaults(func=run_train)

    p = commands.add_parser(
        "predict", help="class, probability and the n-grams the filters fired on",
        description="Classify sentences with a trained model (a run folder or its model.npz) "
        "and show the n-grams whose filters added most to the predicted class.")
    p.add_argument("run", metavar="RUN", help="run folder or text model file")
    p.add_argument("sentences", metavar="SENTENCE", nargs="+", help="sentences to classify")
    p.add_argument("--top", type=number_flag(int, 1), default=3, help="n-grams shown (default 3)")
    p.set_defaults(func=run_predict)


def _silent(*args, **kwargs) -> None:
    """``print`` on the ranks that don't report."""


def run_train(args) -> int:
    from cnnlab import distributed
    from cnnlab.apps.text.datasets import load_corpus
    from cnnlab.apps.text.train import TextSettings, run_units, summarize
    from cnnlab.runs import run_stem

    corpus = load_corpus(args.data, args.data_dir)
    lr = args.lr if args.lr is not None else (1.0 if args.optimizer == "adadelta" else 1e-3)
    cross_validated = corpus.parts is None
    settings = TextSettings(data=args.data if corpus.name == args.data else corpus.name,
                            folds=args.folds, seeds=args.seeds,
                            epochs=args.epochs, batch_size=args.batch_size,
                            optimizer=args.optimizer, lr=lr, min_count=args.min_count)
    name = args.name or run_stem("text", settings.data)
    # under mpirun only rank 0 prints (cnnlab.distributed)
    say = print if distributed.is_root() else _silent
    directory = Path(args.out) / name
    say(f"{corpus.name}: {len(corpus)} sentences, {len(corpus.class_names)} classes; "
          f"run folder {directory}", flush=True)
    results = run_units(corpus, settings, directory, args.max_units,
                        verbose=2 if args.verbose else 0,
                        report=lambda line: say(line, flush=True))
    summary = summarize(results, settings, cross_validated)
    say(f"test accuracy {100 * summary['mean']:.2f} ± {100 * summary['std']:.2f} % "
          f"(mean ± std over {summary['over']}; {summary['units_done']} of "
          f"{summary['units_total']} units done)")
    if summary["units_done"] < summary["units_total"]:
        say("run the same command again to continue", file=sys.stderr)
    return 0


def run_predict(args) -> int:
    from cnnlab.apps.text.model import load_text_model
    from cnnlab.apps.text.predict import predict_sentences

    path = Path(args.run)
    if path.is_dir():
        path = path / "model.npz"
    model, vocabulary, lowercase = load_text_model(path)
    for prediction in predict_sentences(model, vocabulary, lowercase, args.sentences, args.top):
        print(f"{prediction.label} {prediction.probability:.3f}  {prediction.sentence}")
        for ngram in prediction.ngrams:
            print(f"    {' '.join(ngram.words)!r}: {ngram.contribution:+.3f} "
                  f"({ngram.filters} filter{'s' if ngram.filters != 1 else ''})")
    return 0
