# %% [markdown]
# # 06 · Hyper-parameter search: KerasClassifier + GridSearchCV
#
# How many hidden units? Which learning rate? These *hyper-parameters* are not learned by
# gradient descent; they are chosen by comparing trained models. Choosing them by their score
# on the test set would leak the test set into the model (after enough tries, some setting
# looks good by chance). The tutorial's answer is **cross-validation** on the training data
# only:
#
# - split the training set into 3 folds; train on two, score on the third, three times;
# - the setting with the best mean score wins, and is retrained on the whole training set;
# - the test set is used once, at the very end.
#
# scikit-learn's `GridSearchCV` does all of this for any estimator; `KerasClassifier` makes a
# model-building function look like one. Data: scikit-learn's handwritten digits (8×8
# pixels, 1797 images), small enough to train 45 models in a notebook.

# %%
import os

import matplotlib.pyplot as plt
import numpy as np
from sklearn.model_selection import GridSearchCV

from frontends.keras_like import backend as K
from frontends.keras_like import optimizers
from frontends.keras_like.datasets import digits
from frontends.keras_like.layers import Activation, Dense
from frontends.keras_like.models import Sequential
from frontends.keras_like.wrappers.scikit_learn import KerasClassifier

QUICK = os.environ.get("GRAPHC_NOTEBOOK_QUICK") == "1"  # CI runs the notebooks shrunk

# %%
(X, Y), (X_test, Y_test) = digits.load_data(test_split=0.2, seed=0)
X, X_test = X / 16.0, X_test / 16.0  # pixel values 0..16 -> 0..1
print(f"{len(X)} training images, {len(X_test)} test images, {X.shape[1]} pixels each")

fig, axes = plt.subplots(1, 10, figsize=(10, 1.4))
for ax, image, label in zip(axes, X, Y):
    ax.imshow(image.reshape(8, 8), cmap=plt.cm.binary)
    ax.set_title(str(label))
    ax.axis("off")
plt.show()

# %% [markdown]
# ## The model-building function and the grid
#
# The tutorial's function, with its two hyper-parameters as arguments: the number of hidden
# units and RMSprop's learning rate. `KerasClassifier` passes `nodes` and `lr` to it and
# `epochs`, `batch_size` and `verbose` to `fit`. The labels stay integers: the wrapper
# one-hot encodes them for the categorical cross-entropy.

# %%
nodes = [16, 64] if QUICK else [16, 32, 64, 128, 256]  # hidden units
lrs = [0.001, 0.003] if QUICK else [0.001, 0.002, 0.003]  # learning rates
epochs = 3 if QUICK else 15
batch_size = 64


def build_model(nodes=10, lr=0.001):
    model = Sequential()
    model.add(Dense(nodes, kernel_initializer="uniform", input_dim=64))
    model.add(Activation("relu"))
    model.add(Dense(10))
    model.add(Activation("softmax"))
    opt = optimizers.RMSprop(lr=lr)
    model.compile(loss="categorical_crossentropy", optimizer=opt, metrics=["accuracy"])
    return model


K.set_random_seed(0)
model = KerasClassifier(build_fn=build_model, epochs=epochs, batch_size=batch_size, verbose=0)
param_grid = dict(nodes=nodes, lr=lrs)
print(param_grid)

# %% [markdown]
# ## The search
#
# `len(nodes) × len(lrs)` candidates, 3 folds each, then one refit of the best.

# %%
grid = GridSearchCV(estimator=model, param_grid=param_grid, cv=3, n_jobs=1, refit=True, verbose=1)
grid_result = grid.fit(X, Y)
print(f"best: {grid_result.best_score_:.4f} with {grid_result.best_params_}")

# %% [markdown]
# ## The results table
#
# Mean and standard deviation of the accuracy over the three validation folds, best first.

# %%
res = grid_result.cv_results_
print(f"{'rank':>4}  {'nodes':>5}  {'lr':>6}  {'mean acc':>8}  {'std':>6}  {'fit s':>6}")
for i in np.argsort(res["rank_test_score"], kind="stable"):
    print(f"{res['rank_test_score'][i]:4d}  {res['param_nodes'][i]:5d}  {res['param_lr'][i]:6.3f}  "
          f"{res['mean_test_score'][i]:8.4f}  {res['std_test_score'][i]:6.4f}  "
          f"{res['mean_fit_time'][i]:6.2f}")

# %% [markdown]
# ## Validation curve
#
# Cross-validated accuracy against the number of hidden units, one line per learning rate
# (error bars: one standard deviation over the folds). Too few units underfit; past some size
# more units stop helping.

# %%
mean = res["mean_test_score"].reshape(len(lrs), len(nodes))  # the grid varies nodes fastest
std = res["std_test_score"].reshape(len(lrs), len(nodes))
assert [p["lr"] for p in res["params"][:: len(nodes)]] == lrs
plt.figure(figsize=(6.5, 4))
for k, lr in enumerate(lrs):
    plt.errorbar(nodes, mean[k], yerr=std[k], marker="o", capsize=3, label=f"lr = {lr}")
plt.xscale("log", base=2)
plt.xticks(nodes, [str(n) for n in nodes])
plt.xlabel("hidden units")
plt.ylabel("mean accuracy over 3 folds")
plt.title("validation curve")
plt.legend()
plt.show()

# %% [markdown]
# ## Result to check
#
# The winner, retrained on all training images (`refit=True`), meets the test set for the
# first time. Its test accuracy should be close to its cross-validated accuracy: at full
# size, both above 0.93.

# %%
test_accuracy = grid_result.score(X_test, Y_test)
print(f"best setting {grid_result.best_params_}: cross-validated accuracy "
      f"{grid_result.best_score_:.4f}, test accuracy {test_accuracy:.4f}")
minimum = 0.6 if QUICK else 0.93
assert grid_result.best_score_ >= minimum and test_accuracy >= minimum, test_accuracy
print("OK")
