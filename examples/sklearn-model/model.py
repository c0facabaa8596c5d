"""A scikit-learn model: a scaler and a logistic regression whose fitted parameters
live in a file beside the code (JSON, so that any scikit-learn version reads them)."""

import json
import sys
from pathlib import Path

import numpy as np
import sklearn
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

WEIGHTS = Path(__file__).with_name("weights.json")


def load():
    w = json.loads(WEIGHTS.read_text())
    scaler = StandardScaler()
    scaler.mean_ = np.array(w["mean"])
    scaler.scale_ = np.array(w["scale"])
    scaler.var_ = scaler.scale_ ** 2
    scaler.n_features_in_ = len(w["mean"])
    clf = LogisticRegression()
    clf.classes_ = np.array(w["classes"])
    clf.coef_ = np.array([w["coef"]])
    clf.intercept_ = np.array([w["intercept"]])
    clf.n_features_in_ = len(w["coef"])
    return make_pipeline(scaler, clf)


def main() -> int:
    xs = [float(a) for a in sys.argv[1:]] or [5.1, 3.5]
    if len(xs) != 2:
        print("usage: model.carton X1 X2", file=sys.stderr)
        return 2
    model = load()
    label = model.predict([xs])[0]
    p = model.predict_proba([xs])[0].max()
    print(f"scikit-learn {sklearn.__version__}: predict({xs}) = {label} (p={p:.3f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
