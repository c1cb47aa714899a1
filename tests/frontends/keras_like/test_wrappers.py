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


# ---------------------------------------------------------------------------------------------
# the tutorial's grid search, in parallel; clone, pickle, pipelines


def build_tutorial_model(nodes=10, lr=0.001):
    """The tutorial's build_model (input_dim 64: scikit-learn's 8x8 digits instead of MNIST)."""
    model = Sequential()
    model.add(Dense(nodes, kernel_initializer="uniform", input_dim=64))
    model.add(Activation("relu"))
    model.add(Dense(10))
    model.add(Activation("softmax"))
    opt = optimizers.RMSprop(lr=lr)
    model.compile(loss="categorical_crossentropy", optimizer=opt, metrics=["accuracy"])
    return model


def _digits(n=600):
    from sklearn.datasets import load_digits

    digits = load_digits()
    return digits.data[:n] / 16.0, digits.target[:n]


def test_tutorial_grid_search_in_parallel():
    from sklearn.model_selection import GridSearchCV

    x, y = _digits()
    model = KerasClassifier(build_fn=build_tutorial_model, epochs=15, batch_size=64, verbose=0)
    param_grid = dict(nodes=[16, 32], lr=[0.001, 0.01])
    grid = GridSearchCV(estimator=model, param_grid=param_grid, cv=3, n_jobs=2, refit=True)
    grid_result = grid.fit(x, y)
    assert len(grid_result.cv_results_["params"]) == 4
    assert grid_result.best_params_["lr"] == 0.01  # at lr=0.001 the net is still far from converged
    assert grid_result.best_score_ > 0.8
    assert grid_result.best_estimator_.score(x, y) > 0.85
    assert grid_result.predict(x[:3]).shape == (3,)


def test_cross_val_score_in_parallel():
    from sklearn.model_selection import cross_val_score

    x, y = _digits(300)
    clf = KerasClassifier(build_fn=build_tutorial_model, nodes=32, lr=0.01, epochs=10, batch_size=32,
                          verbose=0)
    scores = cross_val_score(clf, x, y, cv=3, n_jobs=2)
    assert scores.shape == (3,) and scores.min() > 0.7


def test_clone_keeps_parameters_and_drops_the_fit():
    from sklearn.base import clone, is_classifier

    clf = KerasClassifier(build_fn=build_tutorial_model, nodes=8, epochs=1, verbose=0)
    assert is_classifier(clf)
    x, y = _digits(100)
    clf.fit(x, y)
    twin = clone(clf)
    assert twin.get_params() == clf.get_params()
    assert not hasattr(twin, "model")
    twin.set_params(nodes=4, epochs=2)
    assert clf.sk_params["nodes"] == 8 and twin.sk_params == {"nodes": 4, "epochs": 2, "verbose": 0}
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        twin.predict(x)


def test_pickled_classifier_predicts_the_same_and_rebuilds_its_functions():
    import pickle

    x, y = _digits(200)
    clf = KerasClassifier(build_fn=build_tutorial_model, nodes=16, lr=0.01, epochs=3, verbose=0)
    clf.fit(x, y)
    before = clf.predict_proba(x)
    restored = pickle.loads(pickle.dumps(clf))
    assert restored.model._predict_fn is None  # compiled functions are not pickled
    np.testing.assert_array_equal(restored.predict_proba(x), before)
    np.testing.assert_array_equal(restored.predict(x), clf.predict(x))
    assert restored.score(x, y) == pytest.approx(clf.score(x, y))
    assert restored.model._predict_fn is not None
    unfitted = pickle.loads(pickle.dumps(KerasClassifier(build_fn=build_tutorial_model, nodes=3)))
    assert unfitted.get_params()["nodes"] == 3


def test_pickled_model_resumes_training_exactly():
    import pickle

    x, y = _digits(128)
    target = np.eye(10)[y]
    model = build_tutorial_model(16, 0.01)
    model.fit(x, target, epochs=1, batch_size=32, verbose=0, shuffle=False)
    twin = pickle.loads(pickle.dumps(model))
    h1 = model.fit(x, target, epochs=2, batch_size=32, verbose=0, shuffle=False).history
    h2 = twin.fit(x, target, epochs=2, batch_size=32, verbose=0, shuffle=False).history
    assert h1 == h2
    for a, b in zip(model.get_weights() + model.optimizer.get_weights(),
                    twin.get_weights() + twin.optimizer.get_weights()):
        np.testing.assert_array_equal(a, b)


class DeepModel:
    """The tutorial's pattern: build_fn is a method of a configuration object."""

    def __init__(self, input_dim):
        self.input_dim = input_dim

    def build_fn(self, nlayers=1, nneurons=16, l2_norm=0.01, dropout_rate=0.0):
        from frontends.keras_like import regularizers
        from frontends.keras_like.layers import Dropout

        model = Sequential()
        for i in range(nlayers):
            kwargs = {"input_dim": self.input_dim} if i == 0 else {}
            model.add(Dense(nneurons, activation="relu",
                            kernel_regularizer=regularizers.l2(l2_norm), **kwargs))
            model.add(Dropout(dropout_rate))
        model.add(Dense(1, activation="sigmoid"))
        model.compile(loss="binary_crossentropy", optimizer="adam", metrics=["accuracy"])
        return model


def test_pipeline_with_a_method_as_build_fn_binary_labels():
    import pickle

    from sklearn.model_selection import cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import RobustScaler

    rng = np.random.default_rng(0)
    x = rng.normal(size=(240, 6)) * 5 + 3
    labels = np.where(x[:, 0] + x[:, 1] > 6, "signal", "background")
    dnn = DeepModel(input_dim=6)
    pipe = make_pipeline(RobustScaler(), KerasClassifier(build_fn=dnn.build_fn, batch_size=32,
                                                         epochs=40, verbose=0))
    pipe.set_params(kerasclassifier__nneurons=12, kerasclassifier__dropout_rate=0.05)
    scores = cross_val_score(pipe, x, labels, cv=3)
    assert scores.mean() > 0.7  # small data: the mechanics are the point here
    pipe.fit(x, labels)
    assert set(pipe.predict(x[:10])) <= {"signal", "background"}
    assert pipe.predict_proba(x[:10]).shape == (10, 2)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(pipe)).predict(x), pipe.predict(x))


def test_pickle_with_random_layers_and_nadam():
    """Dropout's random stream and Nadam's schedule hold graphs; pickling leaves them out."""
    import pickle

    from frontends.keras_like.layers import Dropout, GaussianNoise

    x, y = _digits(64)
    model = Sequential([Dense(16, input_dim=64, activation="relu"), Dropout(0.3), GaussianNoise(0.1),
                        Dense(10, activation="softmax")])
    model.compile(optimizers.Nadam(), "sparse_categorical_crossentropy", metrics=["acc"])
    model.fit(x, y, epochs=1, verbose=0)
    twin = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(twin.predict(x), model.predict(x))
    assert model.layers[1]._stream is not None and model._train_fn is not None  # original intact
    assert twin.fit(x, y, epochs=1, verbose=0).history["loss"][0] < 3.0
