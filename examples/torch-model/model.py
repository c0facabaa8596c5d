"""A small PyTorch model: a two-layer network whose weights live in a file beside the code."""

import json
import sys
from pathlib import Path

import torch

WEIGHTS = Path(__file__).with_name("weights.json")


def load() -> torch.nn.Module:
    w = json.loads(WEIGHTS.read_text())
    net = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.ReLU(), torch.nn.Linear(3, 1))
    with torch.no_grad():
        for layer, name in ((net[0], "hidden"), (net[2], "out")):
            layer.weight.copy_(torch.tensor(w[name]["weight"]))
            layer.bias.copy_(torch.tensor(w[name]["bias"]))
    return net.eval()


def main() -> int:
    xs = [float(a) for a in sys.argv[1:]] or [1.0, 2.0]
    if len(xs) != 2:
        print("usage: model.carton X1 X2", file=sys.stderr)
        return 2
    with torch.no_grad():
        y = load()(torch.tensor([xs])).item()
    print(f"torch {torch.__version__}: predict({xs}) = {y:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
