# %% [markdown]
# # 03 · Binary classification: validation, ROC curve, and the over-training check
#
# The tutorials' classification lab, on real data: the Wisconsin breast cancer set (569
# tumours, 30 measurements of cell nuclei each, scikit-learn ships it). The network outputs one
# number in (0, 1) through a sigmoid: its estimate that a tumour is **malignant**.
#
# Along the way, the diagnostics the tutorials use:
#
# - a **validation split** and the loss/accuracy **learning curves**;
# - the **ROC curve** and the area under it (AUC);
# - the **over-training check**: are the scores the model gives to training samples
#   distributed like those it gives to unseen test samples? A Kolmogorov–Smirnov (KS) test
#   compares the two distributions.

# %%
import os

import matplotlib.pyplot as plt
import numpy as np
from scipy.stats import ks_2samp
from sklearn.metrics import auc, roc_curve

from frontends.keras_like import backend as K
from frontends.keras_like import optimizers
from frontends.keras_like.datasets import breast_cancer
from frontends.keras_like.layers import Dense
from frontends.keras_like.models import Sequential

QUICK = os.environ.get("GRAPHC_NOTEBOOK_QUICK") == "1"  # CI runs the notebooks shrunk
EPOCHS = 15 if QUICK else 60

# %% [markdown]
# ## The data
#
# A quarter of the tumours is kept aside as the test set. In scikit-learn's labels 0 means
# malignant, so the target we train on is `label == 0`. The features have very different
# scales (areas in the hundreds, smoothness around 0.1), so each is standardized with the mean
# and standard deviation of the **training** set: the test set must not leak into training,
# not even through its mean. Three of the 30 features, per class: each separates the classes
# partly, none does alone.

# %%
(x_train, label_train), (x_test, label_test) = breast_cancer.load_data(test_split=0.25, seed=0)
y_train = (label_train == 0).astype("int32")  # 1 = malignant
y_test = (label_test == 0).astype("int32")
mean, std = x_train.mean(axis=0), x_train.std(axis=0)
x_train, x_test = (x_train - mean) / std, (x_test - mean) / std
print(f"train: {x_train.shape}, {y_train.mean():.0%} malignant;  test: {x_test.shape}")

names = breast_cancer.feature_names()
fig, axes = plt.subplots(1, 3, figsize=(11, 3))
for ax, k in zip(axes, [0, 7, 27]):  # mean radius, mean concave points, worst concave points
    for cls, color in [(0, "tab:blue"), (1, "tab:red")]:
        ax.hist(x_train[y_train == cls, k], bins=25, alpha=0.6, color=color,
                label=["benign", "malignant"][cls])
    ax.set_title(names[k])
    ax.set_xlabel("standardized value")
axes[0].legend()
plt.show()

# %% [markdown]
# ## The model and its training
#
# Two small hidden layers and one sigmoid output, trained with Adam on the binary
# cross-entropy. `validation_split=0.2` keeps the last fifth of the training set out of the
# gradient steps and evaluates on it after every epoch.

# %%
K.set_random_seed(0)
model = Sequential([
    Dense(16, activation="relu", input_dim=x_train.shape[1]),
    Dense(8, activation="relu"),
    Dense(1, activation="sigmoid"),
])
model.compile(optimizer=optimizers.Adam(lr=0.001), loss="binary_crossentropy", metrics=["acc"])
history = model.fit(x_train, y_train, batch_size=32, epochs=EPOCHS, validation_split=0.2,
                    verbose=0).history
print(f"after {EPOCHS} epochs: " + ", ".join(f"{k} {v[-1]:.3f}" for k, v in history.items()))

# %% [markdown]
# ## Learning curves
#
# If the validation curves turned up while the training ones kept going down, the model would
# be memorizing the training samples. Here they stay together.

# %%
fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 3.5))
epochs = np.arange(1, EPOCHS + 1)
for key, style in [("", "-"), ("val_", "--")]:
    label = "validation" if key else "training"
    ax_loss.plot(epochs, history[key + "loss"], style, label=label)
    ax_acc.plot(epochs, history[key + "acc"], style, label=label)
ax_loss.set(xlabel="epoch", ylabel="binary cross-entropy", title="loss")
ax_acc.set(xlabel="epoch", ylabel="accuracy", title="accuracy")
ax_loss.legend()
plt.show()

# %% [markdown]
# ## ROC curve
#
# Calling a tumour malignant when the score exceeds a threshold trades true positives
# (malignant tumours found) against false positives (benign ones flagged). The ROC curve shows
# that trade-off for every threshold; the area under it (AUC) is 1 for a perfect ranking and
# 0.5 for guessing.

# %%
score_train = model.predict(x_train)[:, 0]
score_test = model.predict(x_test)[:, 0]
plt.figure(figsize=(4.5, 4.5))
for name, y, score in [("train", y_train, score_train), ("test", y_test, score_test)]:
    fpr, tpr, _ = roc_curve(y, score)
    plt.plot(fpr, tpr, label=f"{name} (AUC = {auc(fpr, tpr):.3f})")
plt.plot([0, 1], [0, 1], color="grey", linestyle=":", label="guessing")
plt.xlabel("false positive rate")
plt.ylabel("true positive rate")
plt.title("ROC curve")
plt.legend(loc="lower right")
plt.show()
fpr, tpr, _ = roc_curve(y_test, score_test)
test_auc = auc(fpr, tpr)

# %% [markdown]
# ## Over-training check
#
# For each class, the distribution of scores on the training set (filled) and on the test set
# (outlined). A model that over-trained would give its training samples more extreme scores
# than it gives new samples. The two-sample KS test measures the largest gap between the two
# cumulative distributions; a small statistic / large p-value means there is no evidence that
# they differ.

# %%
fig, ax = plt.subplots(figsize=(7, 4))
bins = np.linspace(0, 1, 26)
ks = {}
for cls, color, name in [(0, "tab:blue", "benign"), (1, "tab:red", "malignant")]:
    train_scores, test_scores = score_train[y_train == cls], score_test[y_test == cls]
    ax.hist(train_scores, bins=bins, density=True, alpha=0.4, color=color, label=f"{name} (train)")
    ax.hist(test_scores, bins=bins, density=True, histtype="step", linewidth=2, color=color,
            label=f"{name} (test)")
    ks[name] = ks_2samp(train_scores, test_scores)
ax.set_yscale("log")
ax.set(xlabel="score (estimated probability of malignant)", ylabel="density",
       title="scores: train vs test")
ax.legend(loc="upper center")
plt.show()
for name, result in ks.items():
    print(f"{name:10s} KS statistic {result.statistic:.3f}, p-value {result.pvalue:.3f}")

# %% [markdown]
# ## Result to check
#
# On the 143 test tumours the model should rank malignant above benign almost perfectly
# (AUC ≥ 0.97 at full size) and classify about 95 % of them right at the 0.5 threshold.

# %%
loss, accuracy = model.evaluate(x_test, y_test, verbose=0)
print(f"test: AUC {test_auc:.3f}, accuracy {accuracy:.3f}, loss {loss:.3f}")
assert test_auc >= (0.95 if QUICK else 0.97), test_auc
assert accuracy >= (0.9 if QUICK else 0.93), accuracy
print("OK")
