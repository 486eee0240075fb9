"""How invariant is a trained CNN? Test accuracy under shifted, rotated and scaled test images.

Convolution is translation *equivariant* (shift the input, the feature maps
shift with it); max pooling adds a little local *invariance*; the dense layers
at the end are not invariant at all. Nothing in the architecture helps with
rotation or scale: a network has to learn those from (augmented) examples.
This module measures it:

- shift s (pixels): the mean accuracy over the four moves right, left, down and up by s;
- rotation a (degrees): the mean accuracy over a counter-clockwise and a clockwise turn by a;
- scale f: the accuracy with every test image magnified by f about its centre (f < 1 shrinks).

The transforms are ``cnnlab.data.augment``'s ``shift_images``, ``rotate_images``
and ``scale_images`` on the raw uint8 test images (size kept, zeros fill the
border); the transformed set keeps the test set's normalisation statistics and
is scored with ``cnnlab.training.evaluate``. At shift 0, rotation 0 and scale 1
every curve is exactly the model's plain test accuracy.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from cnnlab._checks import check_int, check_number
from cnnlab.data import ArrayDataset
from cnnlab.data.augment import rotate_images, scale_images, shift_images
from cnnlab.training import evaluate

DEFAULT_SHIFTS = (0, 1, 2, 3, 4, 5, 6)
DEFAULT_ROTATIONS = (0, 5, 10, 15, 20, 25, 30, 35, 40, 45)
DEFAULT_SCALES = (0.6, 0.7, 0.8, 0.9, 1.0, 1.1, 1.2, 1.3, 1.4)

_SHIFT_DIRECTIONS = ((1, 0), (-1, 0), (0, 1), (0, -1))


@dataclass
class InvarianceCurves:
    """Accuracy against each transformation's size; ``accuracy`` is the plain test accuracy."""

    accuracy: float
    shifts: list[int] = field(default_factory=list)
    shift_accuracy: list[float] = field(default_factory=list)
    rotations: list[float] = field(default_factory=list)
    rotation_accuracy: list[float] = field(default_factory=list)
    scales: list[float] = field(default_factory=list)
    scale_accuracy: list[float] = field(default_factory=list)

    def at(self, kind: str, value: float) -> float:
        """The accuracy of curve ``kind`` ('shift', 'rotation' or 'scale') at ``value``."""
        xs, ys = {
            "shift": (self.shifts, self.shift_accuracy),
            "rotation": (self.rotations, self.rotation_accuracy),
            "scale": (self.scales, self.scale_accuracy),
        }[kind]
        for x, y in zip(xs, ys):
            if abs(x - value) < 1e-9:
                return y
        raise ValueError(
            f"InvarianceCurves.at: {kind} {value} was not measured; measured {list(xs)}"
        )

    def to_dict(self) -> dict:
        return {
            "accuracy": self.accuracy,
            "shift": {"pixels": list(self.shifts), "accuracy": list(self.shift_accuracy)},
            "rotation": {
                "degrees": list(self.rotations),
                "accuracy": list(self.rotation_accuracy),
            },
            "scale": {"factor": list(self.scales), "accuracy": list(self.scale_accuracy)},
        }

    @classmethod
    def from_dict(cls, data: dict) -> InvarianceCurves:
        return cls(
            accuracy=float(data["accuracy"]),
            shifts=list(data["shift"]["pixels"]),
            shift_accuracy=list(data["shift"]["accuracy"]),
            rotations=list(data["rotation"]["degrees"]),
            rotation_accuracy=list(data["rotation"]["accuracy"]),
            scales=list(data["scale"]["factor"]),
            scale_accuracy=list(data["scale"]["accuracy"]),
        )


def _with_images(dataset: ArrayDataset, images: np.ndarray, what: str) -> ArrayDataset:
    """The same labels and normalisation with transformed images."""
    return ArrayDataset(
        images,
        dataset.labels,
        dataset.class_names,
        f"{dataset.name} ({what})",
        mean=dataset.mean,
        std=dataset.std,
    )


def _check_values(
    name: str, values, low: float, high: float | None = None, low_open: bool = False
) -> list[float]:
    values = list(values)
    if not values:
        raise ValueError(f"invariance_curves: {name} must not be empty, received {name}={values}")
    return [
        check_number(v, "invariance_curves", f"{name}[{i}]", low, high, low_open=low_open)
        for i, v in enumerate(values)
    ]


def invariance_curves(
    model,
    dataset: ArrayDataset,
    shifts=DEFAULT_SHIFTS,
    rotations=DEFAULT_ROTATIONS,
    scales=DEFAULT_SCALES,
    batch_size: int = 256,
) -> InvarianceCurves:
    """Test accuracy of ``model`` as the images of ``dataset`` are shifted, rotated and scaled.

    Args:
        model: a built classifier (a ``cnnlab.nn.Module``) whose input matches the dataset.
        dataset: the test set, an ``ArrayDataset`` with uint8 images (N, C, H, W).
        shifts: pixel distances; each is averaged over the four axis directions.
        rotations: angles in degrees; each is averaged over both directions.
        scales: magnification factors (> 0).

    Returns:
        ``InvarianceCurves``.
    """
    if not isinstance(dataset, ArrayDataset):
        raise TypeError(
            "invariance_curves: expected an ArrayDataset (uint8 images), "
            f"received {type(dataset).__name__}"
        )
    shifts = _check_values("shifts", shifts, 0.0)
    rotations = _check_values("rotations", rotations, 0.0, 360.0)
    scales = _check_values("scales", scales, 0.0, low_open=True)
    batch_size = check_int(batch_size, "invariance_curves", "batch_size", minimum=1)

    def accuracy(images: np.ndarray, what: str) -> float:
        return float(
            evaluate(model, _with_images(dataset, images, what), batch_size=batch_size)["accuracy"]
        )

    images = dataset.images
    result = InvarianceCurves(accuracy=accuracy(images, "plain"))
    for s in shifts:
        scores = [
            accuracy(shift_images(images, s * dx, s * dy), f"shift {s}")
            for dx, dy in _SHIFT_DIRECTIONS
        ]
        result.shifts.append(int(s) if float(s).is_integer() else s)
        result.shift_accuracy.append(float(np.mean(scores)))
    for a in rotations:
        scores = [
            accuracy(rotate_images(images, sign * a), f"rotate {sign * a}") for sign in (1, -1)
        ]
        result.rotations.append(a)
        result.rotation_accuracy.append(float(np.mean(scores)))
    for f in scales:
        result.scales.append(f)
        result.scale_accuracy.append(accuracy(scale_images(images, f), f"scale {f}"))
    return result


def format_curves(results: dict[str, InvarianceCurves]) -> str:
    """A plain-text table per transformation, one column per model."""
    names = list(results)
    first = next(iter(results.values()))
    width = max(12, *(len(n) for n in names))
    lines = []
    for title, values, attribute, unit in (
        ("shift", first.shifts, "shift_accuracy", " px"),
        ("rotation", first.rotations, "rotation_accuracy", "°"),
        ("scale", first.scales, "scale_accuracy", "×"),
    ):
        lines.append(f"{title:>10} | " + " | ".join(f"{n:>{width}}" for n in names))
        for i, value in enumerate(values):
            label = f"{value:g}{unit}"
            cells = [f"{getattr(results[n], attribute)[i]:>{width}.4f}" for n in names]
            lines.append(f"{label:>10} | " + " | ".join(cells))
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"
