# %% [markdown]
# # 04 · Fashion-MNIST: ten kinds of clothing from 28×28 pictures
#
# The multi-class lab of the tutorials. Fashion-MNIST (Zalando Research) has 70 000 grey-scale
# pictures of clothes in ten classes, 60 000 to train on and 10 000 to test; it was made as a
# harder drop-in replacement for the handwritten digits of MNIST.
#
# We train the tutorial's network (Flatten → Dense(512, ReLU) → Dense(10, softmax), Adam,
# sparse categorical cross-entropy), look at what it gets wrong, and then compare the three
# ways the tutorial gives to fight over-training: Dropout, L2 weight penalties and batch
# normalization.
#
# **The data** is read from local files, never downloaded: Debian's package
# `dataset-fashion-mnist` (`sudo apt-get install dataset-fashion-mnist`) or the four files
# in `~/.keras/datasets/fashion-mnist/`. `load_data()` says exactly that when it finds neither.

# %%
import os
import time

import matplotlib.pyplot as plt
import numpy as np

from frontends.keras_like import backend as K
from frontends.keras_like import callbacks, regularizers
from frontends.keras_like.datasets import fashion_mnist
from frontends.keras_like.layers import BatchNormalization, Dense, Dropout, Flatten
from frontends.keras_like.models import Sequential

QUICK = os.environ.get("GRAPHC_NOTEBOOK_QUICK") == "1"  # CI runs the notebooks shrunk
EPOCHS = 2 if QUICK else 5
class_names = fashion_mnist.CLASS_NAMES

# %% [markdown]
# ## The data
#
# `load_data()` returns what Keras' does: uint8 pictures (values 0–255) and labels 0–9. The
# tutorial scales the pixels to [0, 1]. In the CI run (`GRAPHC_NOTEBOOK_QUICK=1`) only a
# tenth of the pictures is used.

# %%
(x_train, y_train), (x_test, y_test) = fashion_mnist.load_data()
print("as loaded:", x_train.shape, x_train.dtype, y_train.shape, y_train.dtype, x_test.shape)
if QUICK:
    x_train, y_train, x_test, y_test = x_train[:6000], y_train[:6000], x_test[:2000], y_test[:2000]
x_train, x_test = x_train / 255.0, x_test / 255.0

plt.figure(figsize=(10, 4.4))
for i in range(20):
    plt.subplot(2, 10, i + 1)
    plt.imshow(x_train[i], cmap=plt.cm.binary)
    plt.xticks([])
    plt.yticks([])
    plt.xlabel(class_names[y_train[i]], fontsize=8)
plt.suptitle("the first training pictures")
plt.show()

# %% [markdown]
# ## The model
#
# `Flatten` turns each 28×28 picture into a vector of 784 pixels; one hidden layer of 512
# ReLU units; ten softmax outputs, the probabilities of the ten classes. The labels stay
# integers: `sparse_categorical_crossentropy` takes them as they are, no one-hot encoding
# needed.
#
# The whole training step (forward pass, loss, gradients, Adam's updates) is **one** compiled
# graphc function, built on the first batch. Batches of 128 mean fewer, larger steps than the
# tutorial's 32 (469 instead of 1875 per epoch), which is faster here and reaches the same
# accuracy.

# %%
K.set_random_seed(0)
model = Sequential([
    Flatten(input_shape=(28, 28)),
    Dense(512, activation="relu"),
    Dense(10, activation="softmax"),
])
model.summary()
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])


class EpochTimer(callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.times = getattr(self, "times", []) + [time.perf_counter() - self.start]


timer = EpochTimer()
start = time.perf_counter()
history = model.fit(x_train, y_train, batch_size=128, epochs=EPOCHS,
                    validation_data=(x_test, y_test), callbacks=[timer], verbose=2).history
fit_seconds = time.perf_counter() - start
test_loss, test_acc = model.evaluate(x_test, y_test, verbose=0)
print(f"\ntest accuracy {test_acc:.4f}; seconds per epoch (training + evaluating the test set): "
      + ", ".join(f"{t:.1f}" for t in timer.times)
      + f"; before the first epoch (building and compiling the step): "
      f"{fit_seconds - sum(timer.times):.1f}")

# %% [markdown]
# ## Learning curves

# %%
fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 3.5))
epochs = np.arange(1, EPOCHS + 1)
ax_loss.plot(epochs, history["loss"], "o-", label="training")
ax_loss.plot(epochs, history["val_loss"], "o--", label="test")
ax_acc.plot(epochs, history["accuracy"], "o-", label="training")
ax_acc.plot(epochs, history["val_accuracy"], "o--", label="test")
ax_loss.set(xlabel="epoch", ylabel="cross-entropy", title="loss")
ax_acc.set(xlabel="epoch", ylabel="accuracy", title="accuracy")
ax_acc.legend()
plt.show()

# %% [markdown]
# ## What does it confuse?
#
# The confusion matrix counts, for each true class (row), how the test pictures were
# classified (column), as a fraction of the row. The diagonal is what is right. Shirts,
# T-shirts, pullovers and coats look alike at 28×28 pixels, and that is where the errors are.

# %%
predicted = model.predict(x_test).argmax(axis=1)
confusion = np.bincount(10 * y_test.astype(int) + predicted, minlength=100).reshape(10, 10)
fractions = confusion / confusion.sum(axis=1, keepdims=True)

fig, ax = plt.subplots(figsize=(7, 6))
image = ax.imshow(fractions, cmap="Blues", vmin=0, vmax=1)
for i in range(10):
    for j in range(10):
        if confusion[i, j]:
            ax.text(j, i, f"{fractions[i, j]:.2f}".lstrip("0"), ha="center", va="center",
                    fontsize=7, color="white" if fractions[i, j] > 0.5 else "black")
ax.set_xticks(range(10), class_names, rotation=60, ha="right")
ax.set_yticks(range(10), class_names)
ax.set(xlabel="predicted", ylabel="true", title="confusion matrix (fraction of each true class)")
fig.colorbar(image, ax=ax, shrink=0.8)
plt.show()

# %% [markdown]
# Some test pictures with the predicted name: green when right, red (with the true name in
# brackets) when wrong.

# %%
plt.figure(figsize=(10, 6.5))
for i in range(24):
    plt.subplot(4, 6, i + 1)
    plt.imshow(x_test[i], cmap=plt.cm.binary)
    plt.xticks([])
    plt.yticks([])
    right = predicted[i] == y_test[i]
    label = class_names[predicted[i]] + ("" if right else f"\n({class_names[y_test[i]]})")
    plt.xlabel(label, color="green" if right else "red", fontsize=8)
plt.tight_layout()
plt.show()

# %% [markdown]
# ## Fighting over-training
#
# With many weights and few examples a network starts to *memorize* its training set: the
# training loss keeps falling while the test loss turns up. To make that visible we train the
# tutorial's bigger network (two hidden layers of 512) on only 10 000 pictures for longer,
# four times:
#
# - **no regularization**;
# - **Dropout(0.3)** after each hidden layer: each step a random 30 % of the units is switched
#   off, so no unit can rely on particular others;
# - **L2 penalty** (`kernel_regularizer=regularizers.l2(1e-4)`): large weights cost loss;
# - **BatchNormalization** after each hidden layer: each unit's inputs are normalized over the
#   batch, which stabilizes and speeds up training (and regularizes a little).

# %%
N_SMALL = 1500 if QUICK else 10000
REG_EPOCHS = 3 if QUICK else 15


def build(variant):
    K.set_random_seed(1)
    layers = [Flatten(input_shape=(28, 28))]
    for _ in range(2):
        penalty = regularizers.l2(1e-4) if variant == "L2(1e-4)" else None
        layers.append(Dense(512, activation="relu", kernel_regularizer=penalty))
        if variant == "Dropout(0.3)":
            layers.append(Dropout(0.3))
        if variant == "BatchNormalization":
            layers.append(BatchNormalization())
    layers.append(Dense(10, activation="softmax"))
    m = Sequential(layers)
    m.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return m


variants = ["none", "Dropout(0.3)", "L2(1e-4)", "BatchNormalization"]
curves, scores = {}, {}
for variant in variants:
    m = build(variant)
    curves[variant] = m.fit(x_train[:N_SMALL], y_train[:N_SMALL], batch_size=128,
                            epochs=REG_EPOCHS, validation_data=(x_test, y_test), verbose=0).history
    scores[variant] = (m.evaluate(x_train[:N_SMALL], y_train[:N_SMALL], verbose=0)[1],
                       m.evaluate(x_test, y_test, verbose=0)[1])

print(f"{'regularization':20s} {'train acc':>10s} {'test acc':>10s} {'gap':>7s}")
for variant, (train_acc, acc) in scores.items():
    print(f"{variant:20s} {train_acc:10.4f} {acc:10.4f} {train_acc - acc:7.4f}")

# %% [markdown]
# Test loss per epoch (solid) and training loss (dotted). Without regularization the test loss
# bottoms out after a few epochs and then creeps up while the training loss keeps falling:
# over-training. Dropout and the L2 penalty keep training and test loss closer together.
# Batch normalization makes the *training* loss fall fastest, but its test loss is noisy: at
# inference it normalizes with moving averages of the batch statistics, which lag behind
# weights that still change quickly.

# %%
fig, ax = plt.subplots(figsize=(8, 4.5))
epochs = np.arange(1, REG_EPOCHS + 1)
for (variant, h), color in zip(curves.items(), ["black", "tab:blue", "tab:orange", "tab:green"]):
    ax.plot(epochs, h["val_loss"], color=color, label=f"{variant} (test)")
    ax.plot(epochs, h["loss"], color=color, linestyle=":", alpha=0.7)
ax.set(xlabel="epoch", ylabel="cross-entropy", yscale="log",
       title=f"trained on {N_SMALL} pictures: test (solid) vs training (dotted) loss")
ax.legend()
plt.show()

# %% [markdown]
# ## Result to check
#
# The tutorial's network, trained on the full set for a few epochs, classifies at least 85 %
# of the 10 000 test pictures right (about 88 % after five epochs).

# %%
print(f"test accuracy after {EPOCHS} epochs: {test_acc:.4f}")
print(f"median time per epoch: {np.median(timer.times):.1f} s")
assert test_acc >= (0.75 if QUICK else 0.85), test_acc
print("OK")
