"""``cnnlab explore [RUN]``: serve the interactive page for a run (``register(subparsers)``).

RUN is a run folder or a model file. Without it, the last run in ``--runs`` (default ./runs) is
shown; when there is none, the default digits model is trained first (a few seconds).
"""

from __future__ import annotations

import sys
import webbrowser
from pathlib import Path

import numpy as np

from cnnlab.errors import CnnlabError

__all__ = ["cmd_explore", "register", "resolve_catalog"]

#: epochs of the model trained when there is no run at all: enough for a sensible page
FIRST_RUN_EPOCHS = 3


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "explore",
        help="an interactive page: how a model sees an image, forward and backward",
        description="Serve a local web page that shows a trained model's feature maps, a conv "
        "unit's products and sum, the backward pass by the lecture's formula next to cnnlab's "
        "own, saliency, Grad-CAM, occlusion and activation maximisation, for images you draw, "
        "pick from the test set or upload.",
    )
    p.add_argument("run", nargs="?", help="a run folder or model file (default: the last run "
                   "in --runs; with none, the default digits model is trained first)")
    p.add_argument("--runs", default=None, help="the runs folder the page may choose from "
                   "(default: the folder holding RUN's run folder, else ./runs)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1; "
                   "anything else makes the page reachable from other machines)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000; 0: any free port)")
    p.add_argument("--open", action="store_true", help="open the page in the browser")
    p.add_argument("--max-upload-bytes", type=int, default=8 << 20,
                   help="the largest request body, an uploaded image included (default 8 MiB)")
    p.add_argument("--verbose", action="store_true", help="log every request")
    p.set_defaults(func=cmd_explore)


def _train_first_run(runs_dir: Path) -> Path:
    from cnnlab.cli import build_parser  # lazy: cnnlab.cli imports this module

    print(f"cnnlab explore: no run in {runs_dir}; training the default digits model "
          f"({FIRST_RUN_EPOCHS} epochs) first", file=sys.stderr, flush=True)
    args = build_parser().parse_args(["train", "--out", str(runs_dir), "--epochs",
                                      str(FIRST_RUN_EPOCHS), "--verbose", "0"])
    status = args.func(args)
    from cnnlab.explore.session import last_run

    found = last_run(runs_dir)
    if status or found is None:
        raise CnnlabError(f"training the first run in {runs_dir} failed (status {status})")
    return found


def resolve_catalog(run, runs_dir, train_if_empty: bool = True):
    """The Catalog for ``cnnlab explore [RUN] [--runs DIR]`` (its ``default``: the run shown
    first). ``runs_dir`` None: RUN's parent folder for a run folder, else ./runs."""
    from cnnlab import runs
    from cnnlab.explore.session import Catalog, last_run

    if runs_dir is None:
        given = None if run is None else Path(run)
        if given is not None and given.is_file() and given.name in (runs.MODEL_FILE,
                                                                     runs.CHECKPOINT_FILE):
            given = given.parent
        runs_dir = given.parent if given is not None and given.is_dir() else Path("runs")
    runs_dir = Path(runs_dir)
    if run is None:
        found = last_run(runs_dir)
        if found is None:
            if not train_if_empty:
                raise CnnlabError(f"no run with a model in {runs_dir}")
            found = _train_first_run(runs_dir)
        return Catalog(runs_dir, default=found.name)
    path = Path(run)
    if not path.exists():
        raise CnnlabError(f"{run}: no such run folder or model file")
    runs.find_model_file(path)  # a clear error now for a folder without a model
    if path.is_file() and path.name in (runs.MODEL_FILE, runs.CHECKPOINT_FILE):
        path = path.parent
    name = path.name if path.is_dir() else path.stem
    from cnnlab.explore.session import RUN_NAME

    if not RUN_NAME.fullmatch(name):
        name = "model"
    inside = runs_dir.is_dir() and path.is_dir() and path.resolve().parent == runs_dir.resolve()
    extra = {} if inside else {name: path.resolve()}
    return Catalog(runs_dir if runs_dir.is_dir() else None, extra, default=name)


def cmd_explore(args) -> int:
    from cnnlab.explore import compute
    from cnnlab.explore.server import Explorer, make_server

    if not 0 <= args.port <= 65535:
        raise CnnlabError(f"--port must be 0..65535, received {args.port}")
    if args.max_upload_bytes < 1:
        raise CnnlabError(f"--max-upload-bytes must be positive, received {args.max_upload_bytes}")
    catalog = resolve_catalog(args.run, args.runs)
    explorer = Explorer(catalog, max_body=args.max_upload_bytes)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"cnnlab explore: warning: serving on {args.host}: other machines on the network "
              "can reach the page and run the model", file=sys.stderr)
    try:  # bind first: a port in use is known before the model loads
        server = make_server(explorer, args.host, args.port, quiet=not args.verbose)
    except OSError as error:
        raise CnnlabError(f"cannot listen on {args.host}:{args.port}: {error.strerror or error}"
                          "; choose another --port (0: any free port)") from None
    try:
        print(f"cnnlab explore: loading {catalog.default} and compiling its layers...",
              file=sys.stderr, flush=True)
        session = explorer.session(catalog.default)  # warm up before printing the URL
        with session.lock:
            compute.predict(session.model, np.zeros(session.model.input_shape, np.float32))
        host = args.host if ":" not in args.host else f"[{args.host}]"
        url = f"http://{host}:{server.server_address[1]}/"
        print(f"cnnlab explore: serving {catalog.default} at {url} (Ctrl-C stops)", flush=True)
        if args.open:
            webbrowser.open(url)
        server.serve_forever()
    except KeyboardInterrupt:
        print("\ncnnlab explore: stopped", file=sys.stderr)
    finally:
        server.server_close()
    return 0
