"""What a build hands out: the deterministic `.carton`, the model's sdist and wheel, and the
files each holds."""
