"""Sequential structure: input shapes, summary table, weights, config round trips, saving."""

import numpy as np
import pytest

from frontends.keras_like import backend as K
from frontends.keras_like.layers import (
    Activation,
    BatchNormalization,
    Dense,
    Dropout,
    Flatten,
    Input,
    InputLayer,
)
from frontends.keras_like.models import Sequential, load_model, model_from_json

# Keras pads each row to the full width (65 columns), trailing spaces included.
SEED_TABLE = "\n".join(line.ljust(65) if line[:1] in "Ld" else line for line in [
    'Model: "sequential_1"',
    "_" * 65,
    "Layer (type)                 Output Shape              Param #",
    "=" * 65,
    "dense_1 (Dense)              (None, 20)                220",
    "_" * 65,
    "dense_2 (Dense)              (None, 30)                630",
    "=" * 65,
    "Total params: 850",
    "Trainable params: 850",
    "Non-trainable params: 0",
    "_" * 65,
])


def _summary(model, **kwargs):
    lines = []
    model.summary(print_fn=lines.append, **kwargs)
    return "\n".join(lines)


def test_summary_of_the_tutorial_model():
    model = Sequential([Dense(20, activation="relu", input_dim=10), Dense(30, activation="relu")])
    assert _summary(model) == SEED_TABLE
    assert model.count_params() == 850


def test_summary_prints_by_default(capsys):
    model = Sequential([Dense(20, input_dim=10)])
    model.summary()
    assert "dense_1 (Dense)              (None, 20)                220" in capsys.readouterr().out


def test_summary_counts_non_trainable_and_thousands():
    model = Sequential([Flatten(input_shape=(28, 28)), Dense(512, activation="relu"),
                        BatchNormalization(), Dropout(0.2), Dense(10), Activation("softmax")])
    text = _summary(model)
    assert "flatten_1 (Flatten)          (None, 784)               0" in text
    assert "dense_1 (Dense)              (None, 512)               401920" in text
    assert "batch_normalization_1 (Batch (None, 512)               2048" in text
    assert "Total params: 409,098" in text
    assert "Trainable params: 408,074" in text
    assert "Non-trainable params: 1,024" in text


@pytest.mark.parametrize("first", [
    lambda: Dense(32, input_dim=16),
    lambda: Dense(32, input_shape=(16,)),
    lambda: Dense(32, batch_input_shape=(None, 16)),
    lambda: Dense(32, batch_input_shape=(8, 16)),
])
def test_ways_to_give_the_input_shape(first):
    model = Sequential()
    model.add(first())
    model.add(Dense(32))
    assert model.input_shape[1:] == (16,)
    assert model.output_shape[1:] == (32,)
    assert model.input_shape[0] == model.output_shape[0]  # None, or the batch size given
    assert model.count_params() == 16 * 32 + 32 + 32 * 32 + 32


def test_input_layer_and_input_function():
    for start in (InputLayer(input_shape=(5,)), Input(shape=(5,))):
        model = Sequential([start, Dense(3)])
        assert len(model.layers) == 1
        assert model.input_shape == (None, 5) and model.output_shape == (None, 3)
    with pytest.raises(ValueError):
        Sequential([Dense(3, input_dim=2), InputLayer(input_shape=(3,))])


def test_keras1_single_layer_constructor_and_add_pop():
    model = Sequential(Dense(32, input_dim=16))
    model.add(Dense(8))
    assert [layer.name for layer in model.layers] == ["dense_1", "dense_2"]
    popped = model.pop()
    assert popped.name == "dense_2" and model.output_shape == (None, 32)
    with pytest.raises(ValueError, match="unique names"):
        model.add(Dense(4, name="dense_1"))


def test_deferred_build_on_first_fit():
    model = Sequential([Dense(4, activation="relu"), Dense(1)])
    with pytest.raises(ValueError, match="not yet been built"):
        model.summary()
    model.compile("sgd", "mse")
    model.fit(np.ones((10, 3)), np.ones(10), verbose=0)
    assert model.input_shape == (None, 3)
    assert model.count_params() == 3 * 4 + 4 + 5


def test_weights_get_set_and_names():
    model = Sequential([Dense(3, input_dim=2), BatchNormalization(), Dense(1)])
    shapes = [w.shape for w in model.get_weights()]
    assert shapes == [(2, 3), (3,), (3,), (3,), (3,), (3,), (3, 1), (1,)]
    assert [w.name for w in model.weights][:2] == ["dense_1/kernel", "dense_1/bias"]
    new = [np.full(s, i, dtype="float32") for i, s in enumerate(shapes)]
    model.set_weights(new)
    for got, expected in zip(model.get_weights(), new):
        np.testing.assert_array_equal(got, expected)
    with pytest.raises(ValueError):
        model.set_weights(new[:-1])
    assert model.get_layer("dense_2") is model.layers[2]
    assert len(model.trainable_weights) == 6 and len(model.non_trainable_weights) == 2


def test_frozen_layers_and_models_do_not_train():
    model = Sequential([Dense(3, input_dim=2), Dense(1)])
    model.layers[0].trainable = False
    model.compile("sgd", "mse")
    before = model.get_weights()
    model.fit(np.ones((8, 2)), np.zeros(8), verbose=0)
    after = model.get_weights()
    np.testing.assert_array_equal(before[0], after[0])
    assert not np.array_equal(before[2], after[2])
    assert "Non-trainable params: 9" in _summary(model)
    model.trainable = False
    model.compile("sgd", "mse")
    model.fit(np.ones((8, 2)), np.zeros(8), verbose=0)
    np.testing.assert_array_equal(model.get_weights()[2], after[2])


def test_config_and_json_round_trip():
    model = Sequential([Dense(4, input_dim=3, activation="tanh", kernel_regularizer="l2"),
                        Dropout(0.3), BatchNormalization(momentum=0.9), Dense(2, activation="softmax")])
    config = model.get_config()
    assert config["layers"][0]["class_name"] == "Dense"
    assert config["layers"][0]["config"]["units"] == 4
    assert config["layers"][0]["config"]["activation"] == "tanh"
    clone = Sequential.from_config(config)
    assert [type(layer).__name__ for layer in clone.layers] == [
        "Dense", "Dropout", "BatchNormalization", "Dense"]
    assert clone.count_params() == model.count_params()
    assert clone.layers[2].momentum == 0.9
    from_json = model_from_json(model.to_json())
    assert from_json.output_shape == (None, 2)


def test_interim_save_and_load(tmp_path):
    model = Sequential([Dense(4, input_dim=3, activation="relu"), Dense(2, activation="softmax")])
    model.compile("adam", "categorical_crossentropy", metrics=["acc"])
    x = np.random.default_rng(0).normal(size=(20, 3))
    y = np.eye(2)[np.arange(20) % 2]
    model.fit(x, y, epochs=2, verbose=0)
    path = tmp_path / "my-model"
    model.save(path)
    loaded = load_model(path)
    np.testing.assert_allclose(loaded.predict(x), model.predict(x), rtol=1e-6)
    assert loaded.metrics_names == ["loss", "acc"]
    np.testing.assert_allclose(loaded.optimizer.get_weights()[1], model.optimizer.get_weights()[1])
    weights = tmp_path / "weights-only"
    model.save_weights(weights)
    fresh = Sequential([Dense(4, input_dim=3, activation="relu"), Dense(2, activation="softmax")])
    fresh.load_weights(weights)
    np.testing.assert_allclose(fresh.predict(x), model.predict(x), rtol=1e-6)


def test_model_is_callable_on_symbolic_tensors():
    import graphc
    import graphc.tensor as T

    model = Sequential([Dense(3, input_dim=2, activation="relu")])
    x = T.matrix("x")
    f = graphc.function([x], model(x))
    data = np.ones((4, 2), "float32")
    np.testing.assert_allclose(f(data), model.predict(data))


def test_unique_names_restart_after_clear_session():
    Dense(2)
    assert Dense(2).name == "dense_2"
    K.clear_session()
    assert Dense(2).name == "dense_1"
    assert Sequential().name == "sequential_1"
