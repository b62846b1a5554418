#!/usr/bin/python3
"""Write scikit-learn's answers for CLIP Lens's metrics as JSON fixtures (test/fixtures/sklearn/*.json).

Run with Debian's interpreter, which has numpy and scikit-learn (the `python3` on PATH may not):

    /usr/bin/python3 tools/crosscheck-sklearn.py [out_dir]     # default out_dir: test/fixtures/sklearn

test/unit/metrics.test.ts feeds each fixture's predictions to computeMetrics / precisionRecallCurve /
precisionRecallAtThreshold and compares every number to these to 1e-9. The prediction sets are generated with a
fixed seed, so re-running reproduces the same files (given the same numpy/scikit-learn; recorded in each file).

Probabilities are rounded to float32 before anything is computed, because CLIP Lens stores float32: the values in
the JSON are the float32 values written exactly, and scikit-learn sees the same numbers as the TypeScript side.

Each fixture: {name, description, generator, classes, labels, pred_probs, ks, indices (optional: evaluate only these
rows), expected: {n, top1Accuracy, balancedAccuracy, recallAtK, macro, weighted, perClass, confusionMatrix,
retrieval: {class, curve, atThreshold}}}. The expected values come from (pred = argmax, numpy ties -> lowest index):
  accuracy_score, balanced_accuracy_score, confusion_matrix(labels=range(K)),
  precision_recall_fscore_support(labels=range(K)) per class and (labels=None) for macro / weighted,
  top_k_accuracy_score(labels=range(K)) (binary: y_score = probs[:, 1]) overall and per class,
  average_precision_score(y == c, probs[:, c]) per class (None without support),
  precision_recall_curve and precision/recall/f1_score of (probs[:, c] >= threshold) for one class.
sklearn warnings (UndefinedMetricWarning for 0/0 and k >= n_classes) are expected and silenced; 0/0 gives 0.
"""
import json
import os
import sys
import warnings

import numpy as np
import sklearn
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    balanced_accuracy_score,
    confusion_matrix,
    f1_score,
    precision_recall_curve,
    precision_recall_fscore_support,
    precision_score,
    recall_score,
    top_k_accuracy_score,
)

SEED = 20240611
# Cases also written as .npy directories: (pred_probs dtype, labels dtype).
NPY_DTYPES = {"balanced": (np.float32, np.int64), "k-edge": (np.float64, np.int32)}


def softmax_rows(logits):
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def noisy_predictions(rng, labels, k, signal, noise=1.0):
    """Softmax of Gaussian logits with `signal` added to the true class."""
    logits = rng.normal(0.0, noise, size=(len(labels), k))
    logits[np.arange(len(labels)), labels] += signal
    return softmax_rows(logits)


def case_balanced(rng):
    k = 5
    labels = rng.permutation(np.repeat(np.arange(k), 60))
    return dict(name="balanced", description="300 samples, 5 classes of 60, moderate signal",
                classes=["cat", "dog", "fox", "owl", "eel"], labels=labels,
                probs=noisy_predictions(rng, labels, k, 1.5), ks=[1, 3, 5])


def case_imbalanced(rng):
    sizes = [200, 100, 50, 20, 8, 3]
    labels = rng.permutation(np.repeat(np.arange(len(sizes)), sizes))
    probs = noisy_predictions(rng, labels, len(sizes), 1.2)
    return dict(name="imbalanced", description="rare classes of 8 and 3 images next to one of 200",
                classes=["car", "bus", "bike", "truck", "fire truck", "tram"], labels=labels, probs=probs,
                ks=[1, 3, 5])


def case_empty_class(rng):
    k = 6
    labels = rng.integers(0, k - 2, size=150)  # classes 4 and 5 have no support
    logits = rng.normal(0.0, 1.0, size=(len(labels), k))
    logits[np.arange(len(labels)), labels] += 0.8
    logits[:, 5] -= 8.0  # 'void' is never predicted either: sklearn's macro average (labels=None) leaves it out
    return dict(name="empty-class", description="'ghost' has no sample but is predicted; 'void' has neither",
                classes=["a", "b", "c", "d", "ghost", "void"], labels=labels, probs=softmax_rows(logits), ks=[1, 3])


def case_never_predicted(rng):
    k = 4
    labels = rng.integers(0, k, size=160)
    logits = rng.normal(0.0, 1.0, size=(len(labels), k))
    logits[np.arange(len(labels)), labels] += 1.5
    logits[:, 2] -= 6.0  # class 2 has support but never wins the argmax
    return dict(name="never-predicted", description="class 'c' has support but is never the top-1 prediction",
                classes=["a", "b", "c", "d"], labels=labels, probs=softmax_rows(logits), ks=[1, 2, 3])


def case_ties(rng):
    """Rows of multiples of 1/8 (exact in float32): ties at the argmax, inside the top K and across AP thresholds."""
    k = 6
    n = 200
    labels = rng.integers(0, k, size=n)
    counts = np.zeros((n, k))
    for i in range(n):
        for _ in range(8):
            j = labels[i] if rng.random() < 0.35 else rng.integers(0, k)
            counts[i, j] += 1
    return dict(name="ties", description="probabilities on a 1/8 grid: many exact ties", classes=list("uvwxyz"),
                labels=labels, probs=counts / 8.0, ks=[1, 2, 3, 5])


def case_k_edge(rng):
    """Top-1 ties where sklearn's Recall@1 (higher index first) differs from argmax accuracy; K >= classes omitted."""
    k = 4
    labels = np.array([0, 1, 2, 3, 0, 1, 2, 3, 0, 2, 1, 3])
    probs = np.array([
        [0.5, 0.5, 0.0, 0.0],   # tie 0/1, label 0: argmax says 0 (hit), sklearn top-1 says 1 (miss)
        [0.5, 0.5, 0.0, 0.0],   # tie 0/1, label 1: argmax miss, top-1 hit
        [0.25, 0.25, 0.25, 0.25],
        [0.25, 0.25, 0.25, 0.25],
        [0.7, 0.1, 0.1, 0.1],
        [0.1, 0.6, 0.2, 0.1],
        [0.1, 0.1, 0.4, 0.4],
        [0.0, 0.0, 0.5, 0.5],
        [0.1, 0.2, 0.3, 0.4],
        [0.4, 0.3, 0.2, 0.1],
        [0.25, 0.5, 0.25, 0.0],
        [0.25, 0.25, 0.0, 0.5],
    ])
    return dict(name="k-edge", description="ties at the top; K = 4 and 7 (>= 4 classes) are omitted",
                classes=["w", "x", "y", "z"], labels=labels, probs=probs, ks=[1, 2, 3, 4, 7])


def case_two_classes(rng):
    n = 120
    labels = rng.integers(0, 2, size=n)
    probs = noisy_predictions(rng, labels, 2, 1.0)
    probs[:6] = [0.5, 0.5]  # p1 == 0.5 exactly: sklearn's binary rule predicts class 0
    return dict(name="two-classes", description="2 classes: sklearn's binary Recall@1 rule (p1 > 0.5)",
                classes=["negative", "positive"], labels=labels, probs=probs, ks=[1, 3])


def case_split(rng):
    k = 5
    labels = rng.integers(0, k, size=240)
    probs = noisy_predictions(rng, labels, k, 1.3)
    indices = np.sort(rng.choice(len(labels), size=90, replace=False))
    return dict(name="split-subset", description="metrics over 90 of 240 rows (computeMetrics indices option)",
                classes=["p", "q", "r", "s", "t"], labels=labels, probs=probs, ks=[1, 3], indices=indices)


def expected_metrics(classes, labels, probs, ks):
    k = len(classes)
    pred = probs.argmax(axis=1)
    ks_used = sorted(set(x for x in ks if x < k))
    all_labels = list(range(k))

    def top_k(y, p, kk):
        if k == 2:
            return float(top_k_accuracy_score(y, p[:, 1], k=kk, labels=all_labels))
        return float(top_k_accuracy_score(y, p, k=kk, labels=all_labels))

    prec, rec, f1, support = precision_recall_fscore_support(labels, pred, labels=all_labels, zero_division="warn")
    per_class = []
    for c in range(k):
        sel = labels == c
        per_class.append(dict(
            **{"class": classes[c]},
            support=int(support[c]),
            predicted=int((pred == c).sum()),
            precision=float(prec[c]),
            recall=float(rec[c]),
            f1=float(f1[c]),
            # no support: CLIP Lens's zero_division convention (sklearn would average an empty set)
            recallAtK={str(kk): (top_k(labels[sel], probs[sel], kk) if sel.any() else 0.0) for kk in ks_used},
            averagePrecision=(float(average_precision_score(sel, probs[:, c])) if sel.any() else None),
        ))
    macro = precision_recall_fscore_support(labels, pred, average="macro")
    weighted = precision_recall_fscore_support(labels, pred, average="weighted")
    c = int(np.bincount(labels, minlength=k).argmax())
    scores = probs[:, c]
    threshold = float(np.median(scores))
    p_curve, r_curve, t_curve = precision_recall_curve(labels == c, scores)
    retrieved = scores >= threshold
    return dict(
        n=int(len(labels)),
        top1Accuracy=float(accuracy_score(labels, pred)),
        balancedAccuracy=float(balanced_accuracy_score(labels, pred)),
        recallAtK={str(kk): top_k(labels, probs, kk) for kk in ks_used},
        macro=dict(precision=float(macro[0]), recall=float(macro[1]), f1=float(macro[2])),
        weighted=dict(precision=float(weighted[0]), recall=float(weighted[1]), f1=float(weighted[2])),
        perClass=per_class,
        confusionMatrix=confusion_matrix(labels, pred, labels=all_labels).tolist(),
        retrieval=dict(
            **{"class": c},
            curve=dict(precision=p_curve.tolist(), recall=r_curve.tolist(), thresholds=t_curve.tolist()),
            atThreshold=dict(
                threshold=threshold,
                precision=float(precision_score(labels == c, retrieved)),
                recall=float(recall_score(labels == c, retrieved)),
                f1=float(f1_score(labels == c, retrieved)),
            ),
        ),
    )


def main():
    out_dir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "test", "fixtures", "sklearn")
    os.makedirs(out_dir, exist_ok=True)
    rng = np.random.default_rng(SEED)
    builders = [case_balanced, case_imbalanced, case_empty_class, case_never_predicted, case_ties, case_k_edge,
                case_two_classes, case_split]
    warnings.simplefilter("ignore")
    for build in builders:
        case = build(rng)
        labels = np.asarray(case["labels"], dtype=np.int64)
        probs = np.asarray(case["probs"], dtype=np.float32).astype(np.float64)  # the float32 values, exactly
        indices = case.get("indices")
        sel_labels = labels if indices is None else labels[indices]
        sel_probs = probs if indices is None else probs[indices]
        doc = dict(
            name=case["name"],
            description=case["description"],
            generator=f"tools/crosscheck-sklearn.py seed {SEED}, scikit-learn {sklearn.__version__}, numpy {np.__version__}",
            classes=case["classes"],
            labels=labels.tolist(),
            pred_probs=probs.tolist(),
            ks=case["ks"],
            expected=expected_metrics(case["classes"], sel_labels, sel_probs, case["ks"]),
        )
        if indices is not None:
            doc["indices"] = [int(i) for i in indices]
        path = os.path.join(out_dir, f"{case['name']}.json")
        with open(path, "w") as f:
            json.dump(doc, f, separators=(",", ":"))
            f.write("\n")
        print(f"wrote {path} ({len(labels)} samples, {len(case['classes'])} classes)")
        if case["name"] in NPY_DTYPES:
            prob_dtype, label_dtype = NPY_DTYPES[case["name"]]
            npy_dir = os.path.join(out_dir, f"{case['name']}-npy")
            os.makedirs(npy_dir, exist_ok=True)
            np.save(os.path.join(npy_dir, "pred_probs.npy"), probs.astype(prob_dtype))
            np.save(os.path.join(npy_dir, "labels.npy"), labels.astype(label_dtype))
            with open(os.path.join(npy_dir, "classes.json"), "w") as f:
                json.dump(case["classes"], f)
            print(f"wrote {npy_dir}/")


if __name__ == "__main__":
    main()
