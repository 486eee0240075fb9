"""cnnlab against PyTorch: ``python benchmarks/run.py`` (see benchmarks/README.md)."""
