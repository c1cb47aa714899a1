# %% [markdown]
# # 02 · Regression: learning y = sin(Σx²)
#
# The first lab of the Keras tutorials: a small network learns a smooth non-linear function of
# ten inputs, $y = \sin\left(\sum_{i=1}^{10} x_i^2\right)$ with $x_i$ uniform in $[0, 1)$. We
# train the same model twice, with plain stochastic gradient descent (SGD) and with Adam, and
# compare their **learning curves**: the loss after each epoch, on the training data and on a
# validation part the model never trains on.
#
# The code is the tutorial's Keras code with only the import lines changed.

# %%
import os

import matplotlib.pyplot as plt
import numpy as np

from frontends.keras_like import backend as K
from frontends.keras_like import optimizers
from frontends.keras_like.layers import Dense
from frontends.keras_like.models import Sequential

QUICK = os.environ.get("GRAPHC_NOTEBOOK_QUICK") == "1"  # CI runs the notebooks shrunk
N_SAMPLES = 4000 if QUICK else 10000
EPOCHS = 4 if QUICK else 10

# %% [markdown]
# ## The data
#
# Each sample is a point in the 10-dimensional unit cube; the target depends on it only through
# $z = \sum x_i^2$, which averages 10/3 and lies mostly between 1 and 6, so $y$ goes through
# about one full swing of the sine over the data. The plot shows the target against $z$.

# %%
rng = np.random.default_rng(0)
N_samples, N_in = N_SAMPLES, 10
x_train = rng.random((N_samples, N_in))
z = np.sum(np.square(x_train), axis=1)
y_train = np.sin(z)

x_test = rng.random((2000, N_in))
z_test = np.sum(np.square(x_test), axis=1)
y_test = np.sin(z_test)

plt.figure(figsize=(6, 3))
plt.scatter(z, y_train, s=2, alpha=0.3)
plt.xlabel("z = Σ x²")
plt.ylabel("y = sin(z)")
plt.title(f"{N_samples} training samples")
plt.show()

# %% [markdown]
# ## The model
#
# Two hidden layers with ReLU activations and one linear output unit, trained on the mean
# squared error. `summary()` prints the Keras table: 220 + 630 + 31 = 881 weights.

# %%
def build_model(optimizer):
    K.set_random_seed(1)  # the same initial weights for both optimizers
    model = Sequential([
        Dense(20, activation="relu", input_dim=N_in),
        Dense(30, activation="relu"),
        Dense(1),
    ])
    model.compile(optimizer=optimizer, loss="mse")
    return model


build_model(optimizers.SGD(lr=0.01)).summary()

# %% [markdown]
# ## Training: SGD against Adam
#
# `fit` holds out the last 20 % of the samples (`validation_split=0.2`) and reports the
# validation loss after each epoch. SGD takes steps of a fixed size along the gradient; Adam
# scales each weight's step by running estimates of the gradient's mean and variance, which
# usually gets it down the loss much faster.

# %%
histories = {}
models = {}
for name, optimizer in [("SGD (lr=0.01)", optimizers.SGD(lr=0.01)),
                        ("Adam (lr=0.001)", optimizers.Adam())]:
    models[name] = build_model(optimizer)
    histories[name] = models[name].fit(x_train, y_train, batch_size=32, epochs=EPOCHS,
                                       validation_split=0.2, verbose=2).history

# %% [markdown]
# ## Learning curves
#
# Solid lines: loss on the training batches (averaged over each epoch); dashed: loss on the
# validation part at the end of each epoch. The grey line is the variance of $y$, the error of
# always predicting the mean: a model is only learning something below it.

# %%
plt.figure(figsize=(7, 4))
for (name, h), color in zip(histories.items(), ["tab:blue", "tab:orange"]):
    epochs = np.arange(1, len(h["loss"]) + 1)
    plt.plot(epochs, h["loss"], color=color, label=f"{name} train")
    plt.plot(epochs, h["val_loss"], color=color, linestyle="--", label=f"{name} validation")
plt.axhline(np.var(y_train), color="grey", linewidth=1, label="variance of y")
plt.yscale("log")
plt.xlabel("epoch")
plt.ylabel("mean squared error")
plt.legend(fontsize="small")
plt.title("learning curves")
plt.show()

# %% [markdown]
# ## Predictions on new data
#
# 2000 fresh points: the prediction against $z$, with the true curve. The network only sees
# the ten coordinates, never $z$ itself.

# %%
fig, axes = plt.subplots(1, 2, figsize=(10, 3.5), sharey=True)
order = np.argsort(z_test)
for ax, (name, model) in zip(axes, models.items()):
    pred = model.predict(x_test)[:, 0]
    ax.scatter(z_test, pred, s=2, alpha=0.4, label="prediction")
    ax.plot(z_test[order], y_test[order], color="black", linewidth=1, label="sin(z)")
    ax.set_title(f"{name}: test MSE {np.mean((pred - y_test) ** 2):.4f}")
    ax.set_xlabel("z = Σ x²")
axes[0].set_ylabel("y")
axes[0].legend()
plt.show()

# %% [markdown]
# ## Result to check
#
# Both models must beat the predict-the-mean baseline on unseen data, and Adam must end below
# SGD. At full size Adam's test error ends near a tenth of the variance of $y$.

# %%
baseline = float(np.var(y_test))
test_mse = {name: model.evaluate(x_test, y_test, verbose=0) for name, model in models.items()}
for name, mse in test_mse.items():
    print(f"{name:16s} test MSE {mse:.4f}  ({mse / baseline:.1%} of the baseline {baseline:.4f})")
sgd, adam = test_mse["SGD (lr=0.01)"], test_mse["Adam (lr=0.001)"]
assert sgd < baseline and adam < sgd
assert adam < (0.5 if QUICK else 0.2) * baseline, adam
print("OK")
