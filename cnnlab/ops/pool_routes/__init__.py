"""Max pooling's routes, one file each: ``window_slices`` (NumPy, the readable reference)
and ``window_loops`` (compiled loops, with the window fixed at compile time or not).
``cnnlab.ops.pool.max_pool2d_plan`` picks one; ``pool_routes`` forces one."""
