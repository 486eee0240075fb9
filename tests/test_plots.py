import numpy as np
import pytest
from PIL import Image

from cnnlab import atomic, plots
from cnnlab.plots import confusion_matrix, plot_confusion_matrix, plot_history

HISTORY = {"loss": [1.2, 0.6, 0.4], "accuracy": [0.6, 0.8, 0.9], "val_loss": [1.0, 0.7, 0.5],
           "val_accuracy": [0.65, 0.78, 0.85]}


def open_png(path):
    with Image.open(path) as image:
        image.load()
        return image.format, image.size


def test_plot_history_writes_a_png_pil_can_open(tmp_path):
    path = plot_history(HISTORY, tmp_path / "sub" / "curve.png", title="run")
    assert path == tmp_path / "sub" / "curve.png"
    fmt, (width, height) = open_png(path)
    assert fmt == "PNG" and width == 1000 and height == 400
    loss_only = plot_history({"loss": [1.0, 0.5]}, tmp_path / "loss.png")
    assert open_png(loss_only)[1] == (550, 400)


def test_figures_are_written_through_cnnlab_atomic(tmp_path, monkeypatch):
    written = []
    original = atomic.atomic_writer

    def spy(path, *args, **kwargs):
        written.append(path)
        return original(path, *args, **kwargs)

    monkeypatch.setattr(plots, "atomic_writer", spy)
    plot_history(HISTORY, tmp_path / "curve.png")
    plot_confusion_matrix(np.eye(3, dtype=int), tmp_path / "cm.png")
    assert written == [tmp_path / "curve.png", tmp_path / "cm.png"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cm.png", "curve.png"]  # no temporaries left


def test_a_symlink_at_the_destination_is_replaced_not_followed(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    link = tmp_path / "curve.png"
    link.symlink_to(victim)
    plot_history(HISTORY, link)
    assert victim.read_text() == "keep me"
    assert not link.is_symlink() and open_png(link)[0] == "PNG"


def test_confusion_matrix_counts_and_checks():
    matrix = confusion_matrix([0, 1, 2, 2, 1], [0, 2, 2, 2, 1], num_classes=3)
    np.testing.assert_array_equal(matrix, [[1, 0, 0], [0, 1, 1], [0, 0, 2]])
    assert confusion_matrix([0, 1], [1, 1]).shape == (2, 2)
    with pytest.raises(ValueError, match="same length"):
        confusion_matrix([0, 1], [0])
    with pytest.raises(ValueError, match=r"\[0, 2\)"):
        confusion_matrix([0, 2], [0, 1], num_classes=2)


def test_plot_confusion_matrix_png_and_errors(tmp_path):
    path = plot_confusion_matrix(np.array([[5, 1], [2, 7]]), tmp_path / "cm.png", class_names=["cat", "dog"])
    fmt, (width, height) = open_png(path)
    assert fmt == "PNG" and width > 300 and height > 300
    with pytest.raises(ValueError, match="square"):
        plot_confusion_matrix(np.zeros((2, 3)), tmp_path / "bad.png")
    with pytest.raises(ValueError, match="class names"):
        plot_confusion_matrix(np.zeros((2, 2)), tmp_path / "bad.png", class_names=["a"])
    with pytest.raises(ValueError, match="no 'loss'"):
        plot_history({}, tmp_path / "bad.png")
    assert not (tmp_path / "bad.png").exists()
