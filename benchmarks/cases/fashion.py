"""fashion_epoch and fashion_epoch_memory: the zoo's ``fashion`` net (BN, dropout), one epoch of
the first 10,000 Fashion-MNIST images, SGD momentum 0.9, batch 64, train mode, in both
frameworks from the same initial weights; and the peak resident memory of that epoch for
each framework alone in its own process (benchmarks/cases/memory.py)."""

from __future__ import annotations

from benchmarks.cases import fashion_cnnlab, fashion_torch
from benchmarks.cases.data import fashion_mnist
from benchmarks.harness import conv_flops, gflops, report, time_pair


def epoch_conv_flops(images):
    """Conv FLOPs of an epoch: forward, ∂L/∂w, and ∂L/∂x for all but the first layer."""
    layers = [(1, 32, 28), (32, 32, 28), (32, 64, 14), (64, 64, 14)]
    per_image = [conv_flops(1, c_in, c_out, size, size, 3, 3) for c_in, c_out, size in layers]
    return images * (2 * per_image[0] + 3 * sum(per_image[1:]))


def bench_fashion(settings):
    x, y, source = fashion_mnist()
    state = fashion_cnnlab.ordered_state(fashion_cnnlab.build())
    losses = {}

    def ours():
        losses["cnnlab"] = fashion_cnnlab.epoch(fashion_cnnlab.build(), x, y)

    def theirs():
        losses["torch"] = fashion_torch.epoch(fashion_torch.build(state), x, y)

    few = slice(0, 3 * fashion_cnnlab.BATCH_SIZE)

    def warm_ours():
        fashion_cnnlab.epoch(fashion_cnnlab.build(), x[few], y[few])

    def warm_theirs():
        fashion_torch.epoch(fashion_torch.build(state), x[few], y[few])

    # an epoch takes 5–30 s: three batches warm each side up; long_repeat blocks a side
    result = time_pair(ours, theirs, settings, warmup=1, repeat=settings.long_repeat,
                       warmup_ours=warm_ours, warmup_theirs=warm_theirs)
    flops = epoch_conv_flops(len(x))
    report("fashion_epoch", result, cnnlab_img_s=f"{len(x) / result.ours_ms * 1e3:.0f}",
           torch_img_s=f"{len(x) / result.theirs_ms * 1e3:.0f}",
           cnnlab_conv_gflops=gflops(flops, result.ours_ms),
           torch_conv_gflops=gflops(flops, result.theirs_ms), data=source,
           final_loss_cnnlab=f"{losses['cnnlab']:.4f}", final_loss_torch=f"{losses['torch']:.4f}")

