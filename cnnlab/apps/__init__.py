"""Applications built on cnnlab."""
