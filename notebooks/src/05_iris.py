# %% [markdown]
# # 05 · Iris: three species from four measurements
#
# Fisher's iris flowers (1936) are the "hello world" of classification: 150 flowers, 50 of
# each species (setosa, versicolor, virginica), each described by the length and width of
# its sepals and petals in centimetres. The tutorial's recipe:
#
# 1. encode the species names as integers (`LabelEncoder`), then as one-hot vectors
#    (`np_utils.to_categorical`);
# 2. a small network with three outputs, trained on the categorical cross-entropy;
# 3. ask it about a new flower.
#
# The Keras 1 spellings the tutorial uses (`np_utils`, `nb_epoch`) work unchanged.

# %%
import os

import matplotlib.pyplot as plt
import numpy as np
from sklearn.preprocessing import LabelEncoder

from frontends.keras_like import backend as K
from frontends.keras_like.datasets import iris
from frontends.keras_like.layers import Dense
from frontends.keras_like.models import Sequential
from frontends.keras_like.utils import np_utils

QUICK = os.environ.get("GRAPHC_NOTEBOOK_QUICK") == "1"  # CI runs the notebooks shrunk
EPOCHS = 60 if QUICK else 200

# %% [markdown]
# ## The data
#
# scikit-learn ships the table; we turn its labels back into the species names of the
# tutorial's CSV file so that the encoding steps are the tutorial's. A fifth of the flowers
# (10 of each species) is kept aside to test on.

# %%
(X, y_int), (X_test, y_test_int) = iris.load_data(test_split=0.2, seed=0)
Y = np.array(iris.CLASS_NAMES)[y_int]          # species names, as read from iris.csv
Y_test = np.array(iris.CLASS_NAMES)[y_test_int]
print(X[:3], Y[:3])

encoder = LabelEncoder()
encoder.fit(Y)
encoded_Y = encoder.transform(Y)
dummy_y = np_utils.to_categorical(encoded_Y)
dummy_y_test = np_utils.to_categorical(encoder.transform(Y_test))
print("classes:", encoder.classes_.tolist(), "-> one-hot rows such as", dummy_y[0])

# %% [markdown]
# Petal length and width alone nearly separate the species: setosa is far away from the other
# two, which overlap a little. The star is the new flower we will ask the model about.

# %%
new_flower = np.array([[4.6, 3.6, 1.0, 0.2]])
plt.figure(figsize=(5.5, 4))
for name in encoder.classes_:
    pts = X[Y == name]
    plt.scatter(pts[:, 2], pts[:, 3], s=15, label=name)
plt.scatter(new_flower[:, 2], new_flower[:, 3], marker="*", s=250, color="black",
            label="new flower")
plt.xlabel(iris.FEATURE_NAMES[2])
plt.ylabel(iris.FEATURE_NAMES[3])
plt.legend()
plt.show()

# %% [markdown]
# ## The model
#
# The tutorial's network has 4 hidden ReLU units and sigmoid outputs. We use 8 hidden units
# (4 ReLU units sometimes start "dead" and the small net then cannot recover) and a softmax
# output, the activation that belongs with the categorical cross-entropy: its three outputs
# are probabilities that sum to one. Batches of 5 flowers, as in the tutorial.

# %%
K.set_random_seed(0)
model = Sequential()
model.add(Dense(8, input_dim=4, activation="relu"))
model.add(Dense(3, activation="softmax"))
model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
history = model.fit(X, dummy_y, nb_epoch=EPOCHS, batch_size=5, verbose=0,
                    validation_data=(X_test, dummy_y_test)).history
print(f"after {EPOCHS} epochs: " + ", ".join(f"{k} {v[-1]:.3f}" for k, v in history.items()))

fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 3.5))
ax_loss.plot(history["loss"], label="training")
ax_loss.plot(history["val_loss"], label="test")
ax_acc.plot(history["accuracy"], label="training")
ax_acc.plot(history["val_accuracy"], label="test")
ax_loss.set(xlabel="epoch", ylabel="cross-entropy", title="loss")
ax_acc.set(xlabel="epoch", ylabel="accuracy", title="accuracy")
ax_acc.legend()
plt.show()

# %% [markdown]
# ## Asking about a new flower
#
# `predict` returns the three probabilities; the encoder turns the most probable index back
# into a name. With petals 1.0 cm long and 0.2 cm wide, it can only be a setosa.

# %%
prediction = model.predict(new_flower)
print("probabilities:", dict(zip(encoder.classes_.tolist(), prediction[0].round(4).tolist())))
species = str(encoder.inverse_transform(prediction.argmax(axis=1))[0])
print("the new flower is an iris", species)

# %% [markdown]
# ## Result to check

# %%
loss, accuracy = model.evaluate(X_test, dummy_y_test, verbose=0)
print(f"test accuracy {accuracy:.3f} on {len(X_test)} flowers; new flower: {species}")
assert species == "setosa"
assert accuracy >= (0.8 if QUICK else 0.9), accuracy
print("OK")
