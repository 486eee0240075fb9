"""The report half of ``scripts/stn_study.py``: the tables, the figures, and what a spatial
transformer learned (θ against the distortion each image was drawn with)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from cnnlab import models, nn
from cnnlab.atomic import atomic_writer, write_text
from cnnlab.data import ArrayDataset, Splits
from cnnlab.data.distort import KINDS, affine_place, distort_images
from cnnlab.io import load_model
from cnnlab.lab import figures
from cnnlab.lab.invariance import invariance_curves

ARMS = ("plain", "augment", "st-cnn")
DATASETS = ("digits", "fashion-mnist")
#: Jaderberg et al. 2015, table 1, MNIST test error (%): CNN and ST-CNN (affine)
PAPER = {"CNN": {"R": 1.2, "RTS": 0.8, "P": 1.5, "E": 1.4},
         "ST-CNN (affine)": {"R": 0.7, "RTS": 0.5, "P": 0.8, "E": 1.2}}


def theta_stats(model, dataset: ArrayDataset, degrees=None, limit: int = 2000):
    """What the ST-CNN's transformer does to ``dataset``'s first ``limit`` images.

    The rotation angle of θ is atan2(θ₁₀, θ₀₀), its scale √|det θ[:, :2]|. With the angles the
    images were distorted by (``degrees``), the least-squares slope and the correlation of θ's
    angle on them: a slope of −1 would undo every rotation, 0 is no rotation at all.
    """
    layer = spatial_transformer(model)
    if layer is None:
        return None
    count = min(limit, len(dataset))
    thetas = [layer.warp(dataset.normalize(dataset.images[s:min(s + 256, count)]))[0]
              for s in range(0, count, 256)]
    theta = np.concatenate(thetas).astype(np.float64)
    angle = np.degrees(np.arctan2(theta[:, 1, 0], theta[:, 0, 0]))
    det = np.linalg.det(theta[:, :, :2])
    stats = {"images": count, "mean_abs_angle": float(np.mean(np.abs(angle))),
             "mean_scale": float(np.mean(np.sqrt(np.abs(det)))),
             "mean_abs_translation": float(np.mean(np.abs(theta[:, :, 2])))}
    if degrees is not None:
        drawn = np.asarray(degrees[:count], dtype=np.float64)
        centred = drawn - drawn.mean()
        stats["slope_vs_distortion"] = float(centred @ (angle - angle.mean()) / (centred @ centred))
        # undefined (None) when θ's angle does not vary at all
        stats["correlation_vs_distortion"] = (float(np.corrcoef(drawn, angle)[0, 1])
                                              if np.ptp(angle) > 0 else None)
    return stats


def error_of(record: dict) -> float:
    """A cell's error on the split it was scored on (test, or validation in selection mode)."""
    return record[f"{record.get('scored_on', 'test')}_error"]


def arm_labels(cells: dict, data: str) -> list[str]:
    """The arm labels present for ``data``: plain, augment, then the ST-CNN configurations."""
    present = {label for (d, _, label) in cells if d == data}
    return ([a for a in ARMS[:2] if a in present]
            + sorted(label for label in present if label not in ARMS[:2]))


def configuration(record: dict) -> str:
    if record.get("st_config"):
        config = record["st_config"]
        warm = config.get("warm_epochs")
        return (f"{config['transform']}, localisation lr × "
                f"{config.get('localization_lr_scale') or 1:g}"
                + (f", warm start {warm} epochs" if warm else ""))
    return record.get("model", "?")


def summary(cells: dict) -> str:
    """The error table (one row per arm label) and the cells with their configurations."""
    lines = ["| data | model | " + " | ".join(KINDS) + " |",
             "|---|---|" + "---:|" * len(KINDS)]
    for data in DATASETS:
        for label in arm_labels(cells, data):
            row = [f"{100 * error_of(cells[(data, k, label)]):.2f}"
                   if (data, k, label) in cells else "–" for k in KINDS]
            lines.append(f"| {data} | {label} | " + " | ".join(row) + " |")
    for name, errors in PAPER.items():
        lines.append(f"| MNIST (paper) | {name} | " + " | ".join(f"{errors[k]:.1f}" for k in KINDS)
                     + " |")
    lines += ["", ("| cell | configuration | epochs | train images | scored on | error % | "
                   "train s | θ: angle slope / corr., mean \\|angle\\|, scale |"),
              "|---|---|---:|---:|---|---:|---:|---|"]
    for key in sorted(cells):
        record = cells[key]
        theta = record.get("theta") or {}
        angle = ("" if "slope_vs_distortion" not in theta else
                 f"{theta['slope_vs_distortion']:+.2f} / "
                 f"{theta['correlation_vs_distortion'] or 0:+.2f}, ")
        theta_text = (f"{angle}{theta['mean_abs_angle']:.1f}°, {theta['mean_scale']:.2f}"
                      if theta else "")
        lines.append(f"| {'_'.join(key)} | {configuration(record)} | {record.get('epochs')} | "
                     f"{record.get('train_images')} | {record.get('scored_on', 'test')} | "
                     f"{100 * error_of(record):.2f} | {record.get('train_seconds', 0):.0f} | "
                     f"{theta_text} |")
    return "\n".join(lines) + "\n" + selection_table(cells)


#: the selection rule: the lowest mean validation error over the last epochs of the budget
SELECTION_EPOCHS = 5


def selection_mean(record: dict) -> float:
    """The selection rule's score of a validation cell: its mean validation error over the
    last ``SELECTION_EPOCHS`` epochs."""
    return float(np.mean(record["val_curve"][-SELECTION_EPOCHS:]))


def selection_table(cells: dict) -> str:
    """Validation error along training for the cells of a selection run, and the ST-CNN
    configuration the rule picks (lowest mean over the last ``SELECTION_EPOCHS`` epochs)."""
    # A warm-started ST-CNN's curve starts after its warm-start epochs: align it by epoch.
    curves = {key: [None] * ((r.get("st_config") or {}).get("warm_epochs") or 0) + r["val_curve"]
              for key, r in cells.items() if r.get("val_curve")}
    if not curves:
        return ""
    epochs = max(len(c) for c in curves.values())
    marks = sorted({e for e in range(5, epochs + 1, 5)} | {1, epochs})
    lines = ["", (f"Validation error (%) after epoch …, and its mean over the last "
                  f"{SELECTION_EPOCHS} epochs (the selection rule)"), "",
             "| cell | " + " | ".join(str(e) for e in marks) + " | mean last |",
             "|---|" + "---:|" * (len(marks) + 1)]
    means = {}
    for key in sorted(curves):
        curve = curves[key]
        means[key] = selection_mean(cells[key])
        lines.append(f"| {'_'.join(key)} | " + " | ".join(
            f"{100 * curve[e - 1]:.2f}" if e <= len(curve) and curve[e - 1] is not None
            else "–" for e in marks)
            + f" | {100 * means[key]:.2f} |")
    for data, kind in sorted({key[:2] for key in curves}):
        st = {key: m for key, m in means.items() if key[:2] == (data, kind)
              and key[2].startswith("st-cnn")}
        if st:
            best = min(st, key=st.get)
            lines.append(f"\nChosen for {data} {kind}: **{best[2]}** ({100 * st[best]:.2f} %)")
    return "\n".join(lines) + "\n"


def _grid_figure(rows, path: Path, title: str) -> Path:
    """A figure of image rows: ``rows`` is [(label, uint8 images (N, 1, H, W))]."""
    from matplotlib.figure import Figure

    columns = max(len(images) for _, images in rows)
    figure = Figure(figsize=(1.0 * columns + 1.2, 1.05 * len(rows) + 0.4), dpi=80)
    axes = figure.subplots(len(rows), columns, squeeze=False)
    for r, (label, images) in enumerate(rows):
        for c in range(columns):
            axis = axes[r, c]
            axis.set_xticks([])
            axis.set_yticks([])
            if c < len(images):
                axis.imshow(images[c, 0], cmap="gray", vmin=0, vmax=255, interpolation="nearest")
            else:
                axis.set_axis_off()
        axes[r, 0].set_ylabel(label, fontsize=8)
    figure.suptitle(title, fontsize=10)
    figure.subplots_adjust(left=0.1, right=0.99, bottom=0.01, top=0.93, wspace=0.05, hspace=0.1)
    with atomic_writer(path) as handle:
        figure.savefig(handle, format="png")
    return path


def distortion_figure(data: str, clean: Splits, seed: int, out: Path, count: int = 8) -> Path:
    test = clean.test.images[:count]
    rows = [("clean", test)]
    for kind in KINDS:
        rows.append((kind, distort_images(test, kind, [seed, 1])))
    return _grid_figure(rows, out / f"distortions_{data}.png",
                        f"{data}: test images, clean and distorted (seed {seed})")


def spatial_transformer(model):
    """The model's first SpatialTransformer, or None."""
    layer_type = getattr(nn, "SpatialTransformer", None)
    if layer_type is None:
        return None
    return next((m for m in model.modules() if isinstance(m, layer_type)), None)


def st_output_figure(data, kind, distorted: Splits, record: dict, out: Path, count=8):
    """Distorted test images next to the spatial transformer's output for them."""
    from cnnlab.nn.module import eval_mode
    from cnnlab.tensor import Tensor, no_grad

    model = load_model(out / record["model_file"])
    layer = spatial_transformer(model)
    if layer is None:
        print(f"{data} {kind}: the st-cnn model has no nn.SpatialTransformer; no figure")
        return None
    images = distorted.test.images[:count]
    x = distorted.test.normalize(images)
    if hasattr(layer, "warp"):
        warped = np.asarray(layer.warp(x)[1])
    else:
        with no_grad(), eval_mode(model):
            warped = np.asarray(layer(Tensor(x)).data)
    # Back to pixels with the input's normalisation (the sampler is linear in the pixels).
    pixels = np.clip(np.rint((warped * distorted.test.std + distorted.test.mean) * 255), 0, 255)
    rows = [(f"{kind} input", images), ("ST output", pixels.astype(np.uint8))]
    return _grid_figure(rows, out / f"st_output_{data}_{kind}.png",
                        f"{data} {kind}: the spatial transformer's output ({record['arm']})")


def clean_test_for(record: dict, clean: Splits, shape, limit: int) -> ArrayDataset:
    """The clean test images as the cell's model saw its training data: on its canvas, with
    the distorted training split's mean/std."""
    test = clean.test.subset(np.arange(min(limit, len(clean.test))))
    images = test.images
    if tuple(shape[1:]) != images.shape[2:]:
        images = affine_place(images, 0.0, 1.0, (0.0, 0.0), canvas=tuple(shape[1:]))
    return ArrayDataset(images, test.labels, test.class_names, f"{test.name} (clean)",
                        mean=record["mean"], std=record["std"])


def invariance_figure(data, kind, cells, clean, out: Path, limit: int, labels=ARMS):
    """The models of the cells ``labels`` (present ones) on one invariance plot."""
    results = {}
    for arm in labels:
        record = cells.get((data, kind, arm))
        if record is None or (arm.startswith("st-cnn") and "st-cnn" not in models.available()):
            continue
        model = load_model(out / record["model_file"])
        test = clean_test_for(record, clean, model.input_shape, limit)
        results[f"{arm} (trained on {kind})"] = invariance_curves(model, test)
    if len(results) < 2:
        return None
    write_text(out / f"invariance_{data}_{kind}.json",
               json.dumps({k: v.to_dict() for k, v in results.items()}, indent=1))
    return figures.invariance_figure(results, out / f"invariance_{data}_{kind}.png",
                                     title=f"{data}, models trained on {kind}: accuracy on "
                                     "transformed clean test images")
