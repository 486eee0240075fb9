"""The benchmark cases of run.py, one module per workload: each times cnnlab and PyTorch
on the same inputs and initial weights and prints its ``bench case=…`` lines."""
