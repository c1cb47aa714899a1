"""to_categorical, normalize, plot_model, Progbar, regularizer objects and backend helpers."""

import numpy as np
import pytest

from frontends.keras_like import backend as K
from frontends.keras_like import regularizers
from frontends.keras_like.layers import Dense, Dropout
from frontends.keras_like.models import Sequential
from frontends.keras_like.utils import Progbar, normalize, np_utils, plot_model, to_categorical
from tests.frontends.keras_like.helpers import evaluate


def test_to_categorical():
    np.testing.assert_array_equal(to_categorical([0, 2, 1]), np.eye(3)[[0, 2, 1]])
    out = to_categorical(np.array([[1], [3]]), num_classes=5)
    assert out.shape == (2, 5) and out.dtype == np.float32
    assert out[1, 3] == 1 and out.sum() == 2
    assert np_utils.to_categorical([1, 0], nb_classes=3).shape == (2, 3)  # Keras 1 name
    assert to_categorical(np.zeros((2, 3), int), 4).shape == (2, 3, 4)
    assert to_categorical(np.array([1.0, 2.0])).shape == (2, 3)
    with pytest.raises(ValueError):
        to_categorical([0, 5], num_classes=3)
    with pytest.raises(ValueError):
        to_categorical([0.5])


def test_normalize():
    x = np.array([[3.0, 4.0], [0.0, 0.0]])
    np.testing.assert_allclose(normalize(x), [[0.6, 0.8], [0.0, 0.0]])
    np.testing.assert_allclose(normalize(x, order=1), [[3 / 7, 4 / 7], [0, 0]])


def test_plot_model_writes_dot(tmp_path):
    model = Sequential([Dense(4, input_dim=3), Dropout(0.5), Dense(1)])
    path = plot_model(model, to_file=str(tmp_path / "model.dot"), show_shapes=True)
    text = open(path).read()
    assert text.startswith("digraph model {")
    assert "dense_1 (Dense)|{input: (None, 3)|output: (None, 4)}" in text
    assert "input -> layer_1;" in text and "layer_2 -> layer_3;" in text


def test_progbar_averages_and_final_line(capsys):
    bar = Progbar(10)
    bar.update(4, [("loss", 1.0)])
    bar.update(10, [("loss", 2.0)])
    out = capsys.readouterr().out
    assert out.startswith("10/10 [==============================]")
    assert "loss: 1.6000" in out  # (4 * 1 + 6 * 2) / 10


def test_regularizer_values():
    w = np.array([[1.0, -2.0], [0.5, 0.0]])
    assert evaluate(regularizers.l1(0.1), w) == pytest.approx(0.35)
    assert evaluate(regularizers.l2(0.1), w) == pytest.approx(0.525)
    assert evaluate(regularizers.l1_l2(0.1, 0.1), w) == pytest.approx(0.875)
    assert evaluate(regularizers.l1l2(0.1, 0.1), w) == pytest.approx(0.875)
    assert evaluate(regularizers.activity_l2(0.1), w) == pytest.approx(0.525)
    assert regularizers.get("l2").l2 == 0.01
    reg = regularizers.get({"class_name": "L1L2", "config": {"l1": 0.0, "l2": 0.3}})
    assert reg.l2 == 0.3 and regularizers.serialize(reg)["config"] == {"l1": 0.0, "l2": 0.3}


def test_backend_variables_and_helpers():
    v = K.variable(np.array([1.0, 2.0]), name="v")
    assert v.dtype == "float32" and v.type.shape == (2,)
    K.set_value(v, [3.0, 4.0])
    np.testing.assert_array_equal(K.get_value(v), [3.0, 4.0])
    assert K.floatx() == "float32" and K.epsilon() == 1e-7
    s = K.variable(0.5)
    assert float(s) == 0.5
    x = np.array([[1.0, 5.0, 2.0], [3.0, 0.0, 4.0]])
    np.testing.assert_array_equal(evaluate(lambda t: K.argmax(t), x), [1, 2])
    np.testing.assert_allclose(evaluate(lambda t: K.l2_normalize(t), x),
                               x / np.linalg.norm(x, axis=-1, keepdims=True))
    np.testing.assert_allclose(evaluate(lambda t: K.relu(t, max_value=3.0), x), np.minimum(x, 3.0))
    np.testing.assert_allclose(evaluate(lambda t: K.relu(t - 2, alpha=0.5, threshold=1.0), x),
                               np.where(x - 2 >= 1, x - 2, 0.5 * (x - 3)))


def test_progbar_redraws_in_place_on_a_terminal():
    import io

    stream = io.StringIO()
    bar = Progbar(100, file=stream, interval=0.0)
    bar._dynamic = True  # as on a terminal
    bar.update(30, [("loss", 0.5)])
    bar.update(60, [("loss", 0.25)])
    bar.update(100, [("loss", 0.25)])
    text = stream.getvalue()
    frames = text.split("\r")[1:]
    assert len(frames) == 3
    assert frames[0].startswith(" 30/100 [========>.....................] - ETA: ")
    assert "loss: 0.5000" in frames[0] and "loss: 0.3750" in frames[1]
    assert frames[2].startswith("100/100 [==============================] - ") and frames[2].endswith("\n")
