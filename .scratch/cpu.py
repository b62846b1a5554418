import time, numpy as np
from sklearn.linear_model._linear_loss import LinearModelLoss
from sklearn._loss.loss import HalfMultinomialLoss
m, d, k = 16000, 512, 100
rng = np.random.default_rng(0)
X = rng.standard_normal((m, d)).astype(np.float64); y = (np.arange(m) % k).astype(np.float64)
loss = LinearModelLoss(base_loss=HalfMultinomialLoss(n_classes=k), fit_intercept=True)
w = (rng.standard_normal(k * (d + 1)) * 0.01)
sw = np.ones(m)
loss.loss_gradient(w, X, y, sw, 0.1, 1)
c0 = time.process_time(); t = time.perf_counter()
for _ in range(10): loss.loss_gradient(w, X, y, sw, 0.1, 1)
print(f'sklearn loss_gradient: {(time.process_time() - c0) * 100:.0f} ms CPU, {(time.perf_counter() - t) * 100:.0f} ms wall per evaluation')
