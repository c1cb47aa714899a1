"""scikit-learn wrappers: the grid-search tutorial pattern."""

import numpy as np
import pytest

from frontends.keras_like import optimizers
from frontends.keras_like.layers import Activation, Dense
from frontends.keras_like.models import Sequential
from frontends.keras_like.wrappers.scikit_learn import KerasClassifier, KerasRegressor

sklearn = pytest.importorskip("sklearn")


def build_model(nodes=10, lr=0.001):
    model = Sequential()
    model.add(Dense(nodes, kernel_initializer="uniform", input_dim=4))
    model.add(Activation("relu"))
    model.add(Dense(3))
    model.add(Activation("softmax"))
    model.compile(loss="categorical_crossentropy", optimizer=optimizers.RMSprop(lr=lr),
                  metrics=["accuracy"])
    return model


def _iris():
    from sklearn.datasets import load_iris

    iris = load_iris()
    x = (iris.data - iris.data.mean(0)) / iris.data.std(0)
    return x, iris.target_names[iris.target]  # string labels, as a LabelEncoder would start from


def test_grid_search_over_build_parameters():
    from sklearn.model_selection import GridSearchCV

    x, y = _iris()
    model = KerasClassifier(build_fn=build_model, epochs=15, batch_size=16, verbose=0)
    grid = GridSearchCV(estimator=model, param_grid={"nodes": [4, 16], "lr": [0.01, 0.03]}, cv=2)
    result = grid.fit(x, y)
    assert set(result.best_params_) == {"nodes", "lr"}
    assert result.best_score_ > 0.7
    predictions = result.best_estimator_.predict(x[:5])
    assert set(predictions) <= set(y)
    proba = result.best_estimator_.predict_proba(x[:5])
    assert proba.shape == (5, 3)


def test_classifier_score_and_params():
    x, y = _iris()
    clf = KerasClassifier(build_fn=build_model, nodes=16, lr=0.03, epochs=20, batch_size=16, verbose=0)
    assert clf.get_params()["nodes"] == 16
    clf.fit(x, y)
    assert clf.score(x, y) > 0.8
    clf.set_params(nodes=8)
    assert clf.sk_params["nodes"] == 8
    with pytest.raises(ValueError, match="not a legal parameter"):
        KerasClassifier(build_fn=build_model, nodez=3)


def test_regressor():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 3))
    y = x @ np.array([1.0, -2.0, 0.5])

    def build():
        model = Sequential([Dense(1, input_dim=3)])
        model.compile(optimizers.SGD(lr=0.05), "mse")
        return model

    reg = KerasRegressor(build_fn=build, epochs=10, verbose=0)
    reg.fit(x, y)
    assert reg.predict(x).shape == (200,)
    assert reg.score(x, y) > -0.05
