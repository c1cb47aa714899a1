"""Loading files that real Keras wrote (tests/fixtures/keras, made by make_fixtures.py with
Keras 3): predictions within 1e-5 of Keras', compile settings, optimizer state, and clear errors
for what graphc does not implement."""

import io
import json
import os
import shutil
import warnings
import zipfile

import numpy as np
import pytest

from frontends.keras_like import optimizers
from frontends.keras_like.models import Sequential, load_model
from frontends.keras_like.saving import UnsupportedKerasConfig

h5py = pytest.importorskip("h5py")

FIXTURES = os.path.join(os.path.dirname(__file__), "..", "..", "fixtures", "keras")


def fixture(name):
    return os.path.join(FIXTURES, name)


def reference(name):
    return np.load(fixture(f"{name}_x.npy")), np.load(fixture(f"{name}_y.npy"))


CASES = [("dense_activations", "keras"), ("dense_activations", "h5"),
         ("activation_layers", "keras"), ("activation_layers", "h5"),
         ("bn_dropout", "keras"), ("bn_dropout", "h5"),
         ("resume_adam", "keras"), ("resume_adam", "h5"), ("functional_chain", "keras"),
         ("loss_objects", "keras")]


@pytest.mark.parametrize("name,ext", CASES)
def test_predictions_match_keras(name, ext):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # loading a supported file warns about nothing
        model = load_model(fixture(f"{name}.{ext}"))
    assert isinstance(model, Sequential)
    x, y = reference(name)
    np.testing.assert_allclose(model.predict(x), y, atol=1e-5, rtol=0)


def test_activations_use_keras3_definitions():
    model = load_model(fixture("dense_activations.keras"))
    names = [layer.get_config()["activation"] for layer in model.layers]
    # Keras 3's hard_sigmoid is relu6(x + 3) / 6, not Keras 2's 0.2 * x + 0.5
    assert "hard_sigmoid_keras3" in names and "hard_sigmoid" not in names
    assert "swish" in names and "gelu" in names and "mish" in names


def test_layers_options_and_compile_settings():
    model = load_model(fixture("activation_layers.keras"))
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds == ["Dense", "Activation", "Dense", "LeakyReLU", "Dense", "ELU", "Dense", "ReLU",
                     "Dense", "PReLU", "Dense", "Activation", "Dense", "Softmax"]
    assert model.layers[3].alpha == pytest.approx(0.1)
    assert model.layers[7].max_value == 2.0 and model.layers[7].threshold == pytest.approx(0.1)
    assert isinstance(model.optimizer, optimizers.SGD)
    assert model.optimizer.nesterov and model.optimizer.momentum == pytest.approx(0.9)
    assert model.metrics_names == ["loss", "accuracy"]


def test_loss_and_metric_objects(tmp_path):
    from frontends.keras_like import losses

    model = load_model(fixture("loss_objects.keras"))
    assert isinstance(model.loss, losses.CategoricalCrossentropy)
    assert model.loss.get_config()["label_smoothing"] == pytest.approx(0.1)
    assert model.metrics_names == ["loss", "categorical_accuracy", "mae"]
    model.save(tmp_path / "again.keras")
    again = load_model(tmp_path / "again.keras")
    assert again.loss.get_config() == model.loss.get_config()
    assert again.metrics_names == model.metrics_names


def test_trained_model_state():
    model = load_model(fixture("bn_dropout.keras"))
    assert isinstance(model.optimizer, optimizers.Adam)
    assert int(model.optimizer.iterations.get_value()) == 18  # 3 epochs x 6 batches in Keras
    bn = model.layers[1]
    assert not np.allclose(bn.moving_mean.get_value(), 0.0)  # Keras' trained statistics
    assert model.layers[5].center is False and len(model.layers[5].weights) == 3
    assert model.layers[0].kernel_regularizer.l2 == pytest.approx(1e-3)


@pytest.mark.parametrize("ext", ["keras", "h5"])
def test_training_resumes_as_keras_continued(ext):
    """Keras trained two more batches after saving; graphc, from the file, does the same."""
    model = load_model(fixture(f"resume_adam.{ext}"))
    batch = np.load(fixture("resume_adam_batch.npz"))
    after = np.load(fixture("resume_adam_after.npz"))
    losses = [model.train_on_batch(batch["x"], batch["y"])[0] for _ in range(2)]
    np.testing.assert_allclose(losses, after["losses"], rtol=1e-5)
    expected = [after[f"arr_{i}"] for i in range(len(model.weights))]
    for ours, theirs in zip(model.get_weights(), expected):
        np.testing.assert_allclose(ours, theirs, atol=1e-5, rtol=0)


def test_keras2_layout_file():
    """A model in the layout tf.keras 2.x writes (batch_input_shape, alpha, Custom>Adam...)."""
    model = load_model(fixture("keras2_layout.h5"))
    x, y = reference("bn_dropout")
    np.testing.assert_allclose(model.predict(x), y, atol=1e-5, rtol=0)
    assert model.layers[4].alpha == pytest.approx(0.2)
    assert isinstance(model.optimizer, optimizers.Adam)
    assert float(model.optimizer.learning_rate.get_value()) == pytest.approx(0.01)
    assert model.metrics_names == ["loss", "accuracy"]


def test_load_weights_from_keras_files():
    source = load_model(fixture("bn_dropout.keras"), compile=False)
    x, y = reference("bn_dropout")
    for ext in ("keras", "h5"):
        model = Sequential.from_config(source.get_config())
        model.load_weights(fixture(f"bn_dropout.{ext}"))
        np.testing.assert_allclose(model.predict(x), y, atol=1e-5, rtol=0)


def test_our_file_has_the_layout_keras_wrote(tmp_path):
    """Re-saving a Keras file gives the same zip entries, weight paths, shapes and dtypes."""
    model = load_model(fixture("bn_dropout.keras"))
    model.save(tmp_path / "again.keras")

    def layout(path):
        with zipfile.ZipFile(path) as zf:
            names = sorted(zf.namelist())
            config = json.loads(zf.read("config.json"))
            items = {}
            with h5py.File(io.BytesIO(zf.read("model.weights.h5")), "r") as f:
                f.visititems(lambda k, v: items.__setitem__(
                    k, (v.shape, v.dtype.kind) if isinstance(v, h5py.Dataset) else None))
        return names, config, items

    names, config, items = layout(tmp_path / "again.keras")
    k_names, k_config, k_items = layout(fixture("bn_dropout.keras"))
    assert names == k_names
    assert items.keys() == k_items.keys()
    for key, value in items.items():
        if key != "optimizer/vars/0":  # the iteration counter: int64 here, int32 under JAX
            assert value == k_items[key], key
    ours = [(e["class_name"], e["config"].get("units"), e["config"].get("negative_slope"))
            for e in config["config"]["layers"]]
    theirs = [(e["class_name"], e["config"].get("units"), e["config"].get("negative_slope"))
              for e in k_config["config"]["layers"]]
    assert ours == theirs
    assert config["compile_config"]["optimizer"]["class_name"] == "Adam"
    assert load_model(tmp_path / "again.keras").optimizer.iterations.get_value() == 18


def _rewrite_config(src, dst, edit, moves=()):
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for item in zin.namelist():
            data = zin.read(item)
            if item == "config.json":
                config = json.loads(data)
                edit(config)
                data = json.dumps(config).encode()
            elif item == "model.weights.h5" and moves:
                buffer = io.BytesIO(data)
                with h5py.File(buffer, "r+") as f:
                    for old, new in moves:
                        f.move(old, new)
                data = buffer.getvalue()
            zout.writestr(item, data)


def _layer(config, i):
    return config["config"]["layers"][i]


@pytest.mark.parametrize("edit,message", [
    (lambda c: _layer(c, 2).update(class_name="GroupNormalization"),
     r"layer 'batch_normalization' \(GroupNormalization\).*not supported"),
    (lambda c: _layer(c, 2)["config"].update(renorm=True), r"renorm=True is not supported"),
    (lambda c: _layer(c, 1)["config"].update(activation="celu"), r"activation 'celu' is not supported"),
    (lambda c: _layer(c, 1)["config"].update(lora_rank=4), r"'dense' \(Dense\): option lora_rank=4"),
    (lambda c: _layer(c, 1)["config"].update(flux_capacitor=1), r"option 'flux_capacitor'"),
    (lambda c: c["compile_config"]["optimizer"].update(class_name="Lion"), r"optimizer 'Lion'"),
    (lambda c: c["compile_config"]["optimizer"]["config"].update(weight_decay=0.01),
     r"weight_decay=0.01 is not supported"),
])
def test_unsupported_features_are_named(tmp_path, edit, message):
    path = tmp_path / "edited.keras"
    _rewrite_config(fixture("bn_dropout.keras"), path, edit)
    with pytest.raises(UnsupportedKerasConfig, match=message):
        load_model(path)


def test_unsupported_optimizer_can_be_skipped_with_compile_false(tmp_path):
    path = tmp_path / "edited.keras"
    _rewrite_config(fixture("bn_dropout.keras"), path,
                    lambda c: c["compile_config"]["optimizer"].update(class_name="Lion"))
    x, y = reference("bn_dropout")
    np.testing.assert_allclose(load_model(path, compile=False).predict(x), y, atol=1e-5, rtol=0)


def test_custom_layer_through_custom_objects(tmp_path):
    from frontends.keras_like.layers import Dense

    class MyDense(Dense):
        pass

    path = tmp_path / "edited.keras"
    _rewrite_config(fixture("functional_chain.keras"), path,
                    lambda c: _layer(c, 1).update(class_name="MyDense", module="my.package",
                                                  registered_name="my_package>MyDense"),
                    # Keras names weight groups after the class: dense, dense_1 -> my_dense, dense
                    moves=[("layers/dense", "layers/my_dense"), ("layers/dense_1", "layers/dense")])
    with pytest.raises(UnsupportedKerasConfig, match="MyDense"):
        load_model(path)
    model = load_model(path, custom_objects={"my_package>MyDense": MyDense})
    assert type(model.layers[0]) is MyDense
    x, y = reference("functional_chain")
    np.testing.assert_allclose(model.predict(x), y, atol=1e-5, rtol=0)


def test_fixture_files_are_small():
    total = sum(os.path.getsize(os.path.join(FIXTURES, f)) for f in os.listdir(FIXTURES))
    assert total < 1_000_000


def test_copy_keeps_loading(tmp_path):
    """Loading looks at the content: a Keras file under another name still loads."""
    shutil.copy(fixture("bn_dropout.keras"), tmp_path / "no-suffix")
    x, y = reference("bn_dropout")
    np.testing.assert_allclose(load_model(tmp_path / "no-suffix").predict(x), y, atol=1e-5, rtol=0)
