"""Saving and loading graphc models: every format, compile settings, optimizer state, configs."""

import inspect
import json
import sys
import warnings
import zipfile

import numpy as np
import pytest

from frontends.keras_like import layers as layers_mod
from frontends.keras_like import optimizers
from frontends.keras_like.layers import (
    Activation,
    BatchNormalization,
    Dense,
    Dropout,
    Lambda,
    LeakyReLU,
    PReLU,
)
from frontends.keras_like.models import Sequential, load_model, model_from_config, model_from_json
from frontends.keras_like.saving import UnsupportedKerasConfig
from frontends.keras_like.saving.keras_config import model_from_keras_config, model_to_keras_config

h5py = pytest.importorskip("h5py")

RNG = np.random.default_rng(0)
X = RNG.normal(size=(48, 5)).astype("float32")
Y = np.eye(3, dtype="float32")[np.arange(48) % 3]


def _model(optimizer="adam"):
    """No dropout: training continues deterministically (shuffle=False in the tests)."""
    model = Sequential([Dense(8, input_dim=5, activation="tanh", kernel_regularizer="l2"),
                        BatchNormalization(momentum=0.9), LeakyReLU(0.1), Dense(3),
                        Activation("softmax")])
    model.compile(optimizer=optimizer, loss="categorical_crossentropy", metrics=["accuracy"])
    return model


@pytest.mark.parametrize("name", ["m.keras", "m.h5", "m.hdf5", "m-checkpoint"])
def test_save_load_resumes_training_exactly(tmp_path, name):
    model = _model(optimizers.Adam(learning_rate=0.02))
    model.fit(X, Y, epochs=2, batch_size=16, verbose=0, shuffle=False)
    path = tmp_path / name
    model.save(path)
    loaded = load_model(path)
    assert [type(layer).__name__ for layer in loaded.layers] == [
        "Dense", "BatchNormalization", "LeakyReLU", "Dense", "Activation"]
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    assert loaded.metrics_names == ["loss", "accuracy"]
    assert isinstance(loaded.optimizer, optimizers.Adam)
    assert float(loaded.optimizer.learning_rate.get_value()) == pytest.approx(0.02)
    assert int(loaded.optimizer.iterations.get_value()) == 6
    for a, b in zip(loaded.optimizer.get_weights(), model.optimizer.get_weights()):
        np.testing.assert_array_equal(a, b)
    # the next epoch is the same step for step: weights, moments, BN statistics
    h_orig = model.fit(X, Y, epochs=1, batch_size=16, verbose=0, shuffle=False).history
    h_load = loaded.fit(X, Y, epochs=1, batch_size=16, verbose=0, shuffle=False).history
    assert h_orig == h_load
    for a, b in zip(loaded.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_keras_file_layout(tmp_path):
    model = _model()
    model.fit(X, Y, epochs=1, batch_size=16, verbose=0)
    path = tmp_path / "m.keras"
    model.save(path)
    with zipfile.ZipFile(path) as zf:
        assert sorted(zf.namelist()) == ["config.json", "metadata.json", "model.weights.h5"]
        config = json.loads(zf.read("config.json"))
        meta = json.loads(zf.read("metadata.json"))
        weights = zf.read("model.weights.h5")
    assert meta["keras_version"].startswith("3")
    assert config["class_name"] == "Sequential" and config["module"] == "keras"
    layer_entries = config["config"]["layers"]
    assert layer_entries[0]["class_name"] == "InputLayer"
    assert layer_entries[0]["config"]["batch_shape"] == [None, 5]
    assert layer_entries[3]["config"]["negative_slope"] == 0.1  # Keras 3's name for alpha
    assert layer_entries[1]["config"]["kernel_regularizer"]["module"] == "keras.regularizers"
    assert config["compile_config"]["optimizer"]["class_name"] == "Adam"
    assert config["compile_config"]["loss"] == "categorical_crossentropy"
    import io

    with h5py.File(io.BytesIO(weights), "r") as f:
        assert sorted(f["layers"]) == ["activation", "batch_normalization", "dense", "dense_1",
                                       "leaky_re_lu"]
        assert f["layers/dense/vars"].attrs["name"] == model.layers[0].name
        assert f["layers/dense/vars/0"].shape == (5, 8)
        assert len(f["layers/batch_normalization/vars"]) == 4
        assert len(f["layers/leaky_re_lu/vars"]) == 0
        # iteration, learning_rate, then momentum/velocity interleaved per trainable weight
        assert len(f["optimizer/vars"]) == 2 + 2 * 6
        assert f["optimizer/vars/3"].shape == (5, 8)


def test_legacy_h5_layout(tmp_path):
    model = _model()
    path = tmp_path / "m.h5"
    model.save(path)
    with h5py.File(path, "r") as f:
        config = json.loads(f.attrs["model_config"])
        assert config["class_name"] == "Sequential"
        assert config["config"]["layers"][1]["config"]["batch_input_shape"] == [None, 5]
        assert config["config"]["layers"][3]["config"]["alpha"] == 0.1  # Keras 2's name
        names = [n.decode() for n in f["model_weights"].attrs["layer_names"]]
        assert names == [layer.name for layer in model.layers]
        dense = model.layers[0].name
        weight_names = [n.decode() for n in f["model_weights"][dense].attrs["weight_names"]]
        assert weight_names == [f"{dense}/kernel:0", f"{dense}/bias:0"]
        assert json.loads(f.attrs["training_config"])["optimizer_config"]["class_name"] == "Adam"


@pytest.mark.parametrize("name", ["w.weights.h5", "w.h5", "weights-only"])
def test_save_and_load_weights(tmp_path, name):
    model = _model()
    model.fit(X, Y, epochs=1, batch_size=16, verbose=0)
    model.save_weights(tmp_path / name)
    fresh = _model()
    fresh.load_weights(tmp_path / name)
    np.testing.assert_array_equal(fresh.predict(X), model.predict(X))
    with pytest.raises(ValueError, match="weights only"):
        load_model(tmp_path / name)


def test_weights_h5_carries_optimizer_state_as_keras3(tmp_path):
    model = _model()
    model.fit(X, Y, epochs=1, batch_size=16, verbose=0)
    model.save_weights(tmp_path / "w.weights.h5")
    fresh = _model()
    fresh.load_weights(tmp_path / "w.weights.h5")
    assert int(fresh.optimizer.iterations.get_value()) == 3


def test_load_weights_by_name_and_mismatch(tmp_path):
    model = Sequential([Dense(4, input_dim=3, name="a"), Dense(2, name="b")])
    model.save_weights(tmp_path / "w.h5")
    other = Sequential([Dense(4, input_dim=3, name="a"), Dense(5, name="c")])
    other.load_weights(tmp_path / "w.h5", by_name=True)
    np.testing.assert_array_equal(other.layers[0].get_weights()[0], model.layers[0].get_weights()[0])
    with pytest.raises(ValueError, match="shape"):
        Sequential([Dense(4, input_dim=3), Dense(5)]).load_weights(tmp_path / "w.h5")
    with pytest.raises(ValueError, match="layers with weights"):
        Sequential([Dense(2, input_dim=3)]).load_weights(tmp_path / "w.h5")


def test_json_and_config_round_trip():
    model = _model()
    text = model.to_json()
    spec = json.loads(text)
    assert spec["module"] == "keras" and "compile_config" not in spec
    clone = model_from_json(text)
    assert [layer.name for layer in clone.layers] == [layer.name for layer in model.layers]
    assert clone.count_params() == model.count_params()
    assert clone.layers[1].momentum == 0.9 and clone.layers[2].alpha == pytest.approx(0.1)
    assert model_from_config(model.get_config()).count_params() == model.count_params()


def _layer_instances():
    return {
        "Activation": Activation("tanh"),
        "ActivityRegularization": layers_mod.ActivityRegularization(0.1, 0.2),
        "AlphaDropout": layers_mod.AlphaDropout(0.2, seed=3), "BatchNormalization": BatchNormalization(
            axis=-1, momentum=0.8, epsilon=1e-4, center=False, gamma_regularizer="l2",
            beta_constraint="non_neg"),
        "Dense": Dense(3, activation="relu", use_bias=False, kernel_initializer="he_normal",
                       kernel_constraint=layers_mod.core.constraints_mod.MaxNorm(2.0)),
        "Dropout": Dropout(0.25, noise_shape=(None, 1), seed=1), "ELU": layers_mod.ELU(0.7),
        "Flatten": layers_mod.Flatten(), "GaussianDropout": layers_mod.GaussianDropout(0.3),
        "GaussianNoise": layers_mod.GaussianNoise(0.2), "LayerNormalization": layers_mod.LayerNormalization(
            epsilon=1e-5, center=False), "LeakyReLU": LeakyReLU(0.05),
        "PReLU": PReLU(alpha_initializer="ones"), "ReLU": layers_mod.ReLU(max_value=3.0, threshold=0.5),
        "Reshape": layers_mod.Reshape((2, 3)), "Softmax": layers_mod.Softmax(axis=-1),
        "ThresholdedReLU": layers_mod.ThresholdedReLU(0.3),
    }


def _normalized(config):
    return json.loads(json.dumps(config))


@pytest.mark.parametrize("class_name", sorted(_layer_instances()))
def test_every_layer_config_round_trips(class_name):
    layer = _layer_instances()[class_name]
    params = set(inspect.signature(type(layer).__init__).parameters) - {"self", "kwargs"}
    config = layer.get_config()
    assert params <= set(config), f"get_config misses {params - set(config)}"
    clone = type(layer).from_config(config)
    assert clone.get_config() == config
    model = Sequential([Dense(6, input_dim=4), layer])
    # through the Keras 3 and Keras 2 forms as well (what the files hold)
    for style in (3, 2):
        spec = json.loads(json.dumps(model_to_keras_config(model, style)))
        rebuilt = model_from_keras_config(spec, style)
        assert _normalized(rebuilt.layers[1].get_config()) == _normalized(config)
        assert rebuilt.output_shape == model.output_shape


def test_every_layer_class_is_covered():
    assert set(_layer_instances()) == set(layers_mod._CLASSES) - {"InputLayer", "Lambda"}


def test_lambda_layers_cannot_go_into_a_config(tmp_path):
    model = Sequential([Dense(2, input_dim=3), Lambda(lambda t: t * 2)])
    with pytest.raises(UnsupportedKerasConfig, match="Lambda"):
        model.save(tmp_path / "m.keras")
    assert not list(tmp_path.iterdir())  # nothing left behind, not even a temporary file
    model.save_weights(tmp_path / "w.weights.h5")  # weights are fine


def test_custom_loss_saves_without_training_config(tmp_path):
    def my_loss(y_true, y_pred):
        return ((y_true - y_pred) ** 2).mean(axis=-1)

    model = Sequential([Dense(2, input_dim=3)])
    model.compile("sgd", my_loss)
    with pytest.warns(UserWarning, match="training configuration is not saved"):
        model.save(tmp_path / "m.keras")
    loaded = load_model(tmp_path / "m.keras")
    assert not getattr(loaded, "_compiled", False)


def test_compile_false_and_include_optimizer_false(tmp_path):
    model = _model()
    model.save(tmp_path / "a.keras")
    assert not getattr(load_model(tmp_path / "a.keras", compile=False), "_compiled", False)
    model.save(tmp_path / "b.keras", include_optimizer=False)
    assert not getattr(load_model(tmp_path / "b.keras"), "_compiled", False)


def test_overwrite_false(tmp_path):
    model = Sequential([Dense(2, input_dim=3)])
    model.save(tmp_path / "m.keras")
    with pytest.raises(FileExistsError):
        model.save(tmp_path / "m.keras", overwrite=False)
    with pytest.raises(ValueError, match="weights.h5"):
        model.save_weights(tmp_path / "w.keras")


def test_missing_h5py_gives_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "h5py", None)
    model = Sequential([Dense(2, input_dim=3)])
    with pytest.raises(ImportError, match="pip install"):
        model.save(tmp_path / "m.keras")
    model.save(tmp_path / "m-archive")  # graphc's archive needs no h5py
    assert load_model(tmp_path / "m-archive").count_params() == 8


def test_reads_the_interim_archive_format(tmp_path):
    model = Sequential([Dense(2, input_dim=3)])
    path = tmp_path / "old"
    with open(path, "wb") as f:
        np.savez(f, weight_0000=np.ones((3, 2), "float32"), weight_0001=np.zeros(2, "float32"),
                 __model_config__=np.array(json.dumps({"class_name": "Sequential",
                                                       "config": model.get_config()})))
    loaded = load_model(path)
    np.testing.assert_array_equal(loaded.get_weights()[0], np.ones((3, 2)))


def test_unknown_file_is_rejected(tmp_path):
    (tmp_path / "junk.keras").write_bytes(b"not a model")
    with pytest.raises(ValueError, match="not a model file"):
        load_model(tmp_path / "junk.keras")


def test_optimizer_mismatch_warns_and_starts_fresh(tmp_path):
    model = _model("adam")
    model.fit(X, Y, epochs=1, batch_size=48, verbose=0)
    model.save_weights(tmp_path / "w.weights.h5")
    other = _model("sgd")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        other.load_weights(tmp_path / "w.weights.h5")
    assert any("optimizer starts fresh" in str(w.message) for w in caught)
    np.testing.assert_array_equal(other.predict(X), model.predict(X))


def test_reads_keras1_and_keras2_json():
    """Old configs: Keras 1 names (output_dim, init, W_regularizer, p) and Keras 2.2's layer list."""
    keras1 = {"class_name": "Sequential", "config": [
        {"class_name": "Dense", "config": {
            "name": "dense_1", "output_dim": 4, "init": "glorot_uniform", "activation": "relu",
            "W_regularizer": None,
            "b_regularizer": None, "activity_regularizer": None, "W_constraint": None,
            "b_constraint": None, "bias": True, "input_dim": 3, "batch_input_shape": [None, 3],
            "input_dtype": "float32", "trainable": True}},
        {"class_name": "Dropout", "config": {"name": "dropout_1", "p": 0.5, "trainable": True}},
        {"class_name": "Dense", "config": {"name": "dense_2", "output_dim": 2, "init": "uniform",
                                           "activation": "hard_sigmoid", "input_dim": None,
                                           "trainable": True, "bias": False}}]}
    model = model_from_json(json.dumps(keras1))
    assert model.output_shape == (None, 2) and model.layers[1].rate == 0.5
    assert model.layers[2].get_config()["activation"] == "hard_sigmoid"  # Keras 2's meaning
    assert not model.layers[2].use_bias
    with pytest.raises(UnsupportedKerasConfig, match="'dense_1' \\(Dense\\): option 'W_learning_rate'"):
        keras1["config"][0]["config"]["W_learning_rate"] = 2.0
        model_from_json(json.dumps(keras1))
