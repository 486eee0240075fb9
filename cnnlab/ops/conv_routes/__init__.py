"""conv2d's routes, one file each, named for what they compute:

- ``im2col``: forward and ∂L/∂w as one GEMM per group over the im2col buffer, ∂L/∂x by col2im;
- ``full_convolution``: the lecture's ∂L/∂x, zero-inserted δ against the rotated kernels;
- ``shifted_gemm``: stride 1, one group: all three as GEMMs on shifted column ranges;
- ``winograd``: 3×3, stride 1: Winograd's F(2×2, 3×3) or F(4×4, 3×3), one GEMM per transformed
  position, with its tiling kernels in ``winograd_transforms`` and the written-out 1-D
  transforms in ``winograd_rows``;
- ``im2col_loops``: the im2col/col2im copies as compiled element loops.

``cnnlab.ops.conv_plan.conv2d_plan`` picks the routes; ``conv_plan.conv_routes`` forces them.
"""
