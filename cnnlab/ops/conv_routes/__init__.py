"""conv2d's routes, one file each, named for what they compute:

- ``im2col``: forward and ∂L/∂w as one GEMM per group over the im2col buffer, ∂L/∂x by col2im;
- ``full_convolution``: the lecture's ∂L/∂x, zero-inserted δ against the rotated kernels;
- ``shifted_gemm``: stride 1, one group: all three as GEMMs on shifted column ranges;
- ``winograd``: 3×3, stride 1: Winograd's F(2×2, 3×3) or F(4×4, 3×3), one GEMM per transformed
  position, with its tiling kernels in ``winograd_transforms`` and the written-out 1-D
  transforms in ``winograd_rows`` (F(2, 3)) and ``winograd_rows_f4`` (F(4, 3));
- ``im2col_images``: forward and ∂L/∂w through one small column buffer per thread, a chunk of
  images at a time (large batches of wide images: the Go net's 5×5 layer, conv_c);
- ``kn2row``: stride 1, one group: one GEMM against every kernel offset, then shifted sums
  (1-D convolutions: the sentence CNN);
- ``im2col_loops``: the im2col/col2im copies as compiled element loops;
- ``batch_threads``: the batch split across Python threads, BLAS at one thread in each.

``cnnlab.ops.conv_plan.conv2d_plan`` picks the routes; ``conv_plan.conv_routes`` forces them.
"""
