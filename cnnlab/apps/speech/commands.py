"""``cnnlab speech``: train, predict and show, for the ``cnnlab`` parser (``register(subparsers)``).

- ``cnnlab speech train [--model freq|2d] [--split standard|speaker|speaker:NAME] ...``
- ``cnnlab speech predict FILE.wav ... [--model PATH]``: the digit and its probability, with
  the model that ships with cnnlab unless ``--model`` names another.
- ``cnnlab speech show FILE.wav [--out PNG]``: the spectrogram and the first layer's filters.

The handlers parse and call ``cnnlab.apps.speech``; errors a user can fix are one line,
``cnnlab speech: error: ...``, with exit status 2 (``cnnlab.cli.main`` prints them).
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

from cnnlab.errors import CnnlabError
from cnnlab.lab.cli_conventions import number_flag

__all__ = ["SpeechCommandError", "register"]


class SpeechCommandError(CnnlabError):
    """A user-facing error of ``cnnlab speech``: one line, exit status 2."""


def register(subparsers) -> None:
    """Add ``cnnlab speech`` and its sub-commands to an argparse sub-parser group."""
    speech = subparsers.add_parser(
        "speech", help="spoken digits: train a spectrogram CNN, predict, show",
        description="Spoken-digit recognition on spectrograms (FSDD): a CNN whose first filters "
        "slide along frequency only, time left to a later layer ('freq', the lecture's "
        "design), or an ordinary 2-D CNN.")
    commands = speech.add_subparsers(dest="speech_command", metavar="{train,predict,show}")
    speech.set_defaults(func=lambda args: _usage(speech))

    p = commands.add_parser("train", help="train a speech model on FSDD in a run folder",
                            description="Train on the Free Spoken Digit Dataset; the test split "
                            "is evaluated after every epoch.")
    p.add_argument("--model", choices=("freq", "2d"), default="freq")
    p.add_argument("--split", default="standard",
                   help="standard (takes 0-4 are the test set), speaker (six runs, each "
                   "speaker held out once) or speaker:NAME (default standard)")
    p.add_argument("--data-dir", default=None,
                   help="folder holding fsdd/recordings (default $CNNLAB_DATA/fsdd)")
    p.add_argument("--epochs", type=number_flag(int, 1), default=None)
    p.add_argument("--batch-size", type=number_flag(int, 1), default=None)
    p.add_argument("--lr", type=number_flag(float, 1e-12), default=None)
    p.add_argument("--augment", default=None,
                   help="default 'shift=4,tempo=0.08,pitch=0.03,noise=0.03'; also freq_mask=N,"
                   "time_mask=N (SpecAugment), or none")
    p.add_argument("--seed", type=number_flag(int, 0), default=None)
    p.add_argument("--threads", type=number_flag(int, 1), default=None,
                   help="BLAS threads (default: chosen from the free cores)")
    p.add_argument("--features", choices=("logmel", "stft", "mfcc"), default="logmel")
    p.add_argument("--n-mels", type=number_flag(int, 2, 512), default=40)
    p.add_argument("--window", type=number_flag(int, 16, 16384), default=256)
    p.add_argument("--hop", type=number_flag(int, 1, 16384), default=128)
    p.add_argument("--frames", type=number_flag(int, 8, 10000), default=64)
    p.add_argument("--takes", type=number_flag(int, 1, 50), default=None,
                   help="use only the first N takes of each speaker and digit (quick trials)")
    p.add_argument("--out", default="runs", help="folder of run folders (default runs)")
    p.add_argument("--name", default=None, help="run folder name (default speech-MODEL-DATA-NNN)")
    p.add_argument("--overwrite", action="store_true")
    p.add_argument("--resume", default=None, metavar="RUN",
                   help="continue RUN (its folder or checkpoint); only --epochs and --threads "
                   "may change")
    p.add_argument("--verbose", type=int, choices=(0, 1, 2), default=1)
    p.set_defaults(func=_train)

    p = commands.add_parser("predict", help="the digit spoken in each WAV file",
                            description="Print the most probable digit and its probability "
                            "for each WAV file (any sample rate, mono or stereo).")
    p.add_argument("files", nargs="+", metavar="FILE.wav")
    p.add_argument("--model", default=None,
                   help="a speech model file or run folder (default: the shipped model)")
    p.set_defaults(func=_predict)

    p = commands.add_parser("show", help="draw a recording's spectrogram and first-layer filters",
                            description="Write a PNG: the model's input spectrogram, and the "
                            "first-layer filters that respond most with their responses.")
    p.add_argument("file", metavar="FILE.wav")
    p.add_argument("--model", default=None,
                   help="a speech model file or run folder (default: the shipped model)")
    p.add_argument("--out", default=None, help="PNG path (default FILE-speech.png here)")
    p.add_argument("--filters", type=number_flag(int, 1, 32), default=8)
    p.set_defaults(func=_show)


def _usage(parser) -> int:
    parser.print_help(sys.stderr)
    return 2


def _train(args) -> int:
    from cnnlab.apps.speech import train  # lazy: the training stack loads slowly
    from cnnlab.apps.speech.spectrogram import FeatureSettings

    chosen = {key: getattr(args, key) for key in ("epochs", "batch_size", "lr", "augment",
                                                  "seed", "threads")
              if getattr(args, key) is not None}
    if args.resume:
        fixed = set(chosen) - {"epochs", "threads"}
        if fixed or args.name or args.overwrite:
            raise SpeechCommandError("--resume continues a run with its own settings; only "
                                     "--epochs and --threads may be given")
        result = train.resume_speech(args.resume, epochs=chosen.get("epochs"),
                                     threads=chosen.get("threads"), verbose=args.verbose)
        return _quiet_report(args, [result], train)
    try:
        features = FeatureSettings(kind=args.features, window=args.window, hop=args.hop,
                                   n_mels=args.n_mels, frames=args.frames)
    except ValueError as error:
        raise SpeechCommandError(str(error)) from None
    try:
        results = train.train_speech(args.model, args.split, data_dir=args.data_dir, out=args.out,
                           name=args.name, overwrite=args.overwrite, features=features,
                           takes=args.takes, verbose=args.verbose, **chosen)
    except ValueError as error:  # a model that doesn't fit the features, a bad augment
        if isinstance(error, CnnlabError):
            raise
        raise SpeechCommandError(str(error)) from None
    return _quiet_report(args, results, train)


def _quiet_report(args, results, train) -> int:
    """With --verbose 0 the library prints nothing: the results still get one line each."""
    from cnnlab import distributed

    if args.verbose == 0 and distributed.is_root():
        for result in results:
            print(f"{result.run.directory}: Test accuracy {result.test_accuracy:.4f} "
                  f"after {result.epochs} epochs")
        if len(results) > 1:
            print(train.summarize_rotations(results))
    return 0


@contextlib.contextmanager
def _model(path_text):
    """(model, feature settings) of --model, or of the shipped model."""
    from cnnlab import runs
    from cnnlab.apps.speech.model_file import load_speech_model, shipped_model_path

    if path_text is None:
        with shipped_model_path() as path:
            yield load_speech_model(path)
        return
    yield load_speech_model(runs.find_model_file(path_text))


def _predict(args) -> int:
    from cnnlab.apps.speech.inference import predict_recordings

    failed = 0
    with _model(args.model) as (model, features):
        for path in args.files:
            try:
                [result] = predict_recordings(model, features, [path])
            except CnnlabError as error:
                print(f"cnnlab speech: error: {error}", file=sys.stderr)
                failed += 1
                continue
            notes = f"  ({'; '.join(result.info.notes)})" if result.info.notes else ""
            print(f"{path}: {result.label} ({result.probability:.3f}){notes}", flush=True)
    return 2 if failed else 0


def _show(args) -> int:
    from cnnlab.apps.speech.inference import show_recording

    out = Path(args.out) if args.out else Path(f"{Path(args.file).stem}-speech.png")
    with _model(args.model) as (model, features):
        try:
            _, prediction = show_recording(model, features, args.file, out, filters=args.filters)
        except ValueError as error:
            if isinstance(error, CnnlabError):
                raise
            raise SpeechCommandError(f"{args.model or 'the shipped model'}: {error}") from None
    print(f"{args.file}: {prediction.label} ({prediction.probability:.3f})")
    print(f"Wrote {out}")
    return 0
