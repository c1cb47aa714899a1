"""Model architecture <-> Keras configs (Keras 3 ``config.json``, Keras 2/1 ``model_config``).

Writing: a graphc ``Sequential`` becomes the config Keras 3 writes (``module``/``class_name``/
``config``/``registered_name`` entries, an ``InputLayer``, dtype policies, ``build_config``), or
for legacy HDF5 files the Keras 2 form (``batch_input_shape`` on the first layer).

Reading: configs written by Keras 3, Keras 2 (and the Keras 1 argument names) or by graphc are
checked option by option against what graphc implements. An option graphc does not implement
raises :class:`UnsupportedKerasConfig` naming the layer and the option, unless it holds the
value under which it changes nothing (``renorm=False``, ``quantization_config=None``...).
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from typing import Any

from frontends.keras_like import activations as activations_mod
from frontends.keras_like import constraints as constraints_mod
from frontends.keras_like import initializers as initializers_mod
from frontends.keras_like import layers as layers_mod
from frontends.keras_like import regularizers as regularizers_mod


class UnsupportedKerasConfig(ValueError):
    """A Keras file uses a layer, option or object graphc does not implement."""


def keras_snake_case(name: str) -> str:
    """Keras' ``naming.to_snake_case`` (``LeakyReLU`` -> ``leaky_re_lu``): weight-file paths."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def major_version(version: Any) -> int:
    """``'3.15.1'`` -> 3; a file without a version is a Keras 1 file (as Keras assumes)."""
    match = re.match(r"\s*(\d+)", str(version or "1"))
    return int(match.group(1)) if match else 1


# ---------------------------------------------------------------------------------------
# What each layer accepts. Kinds: keep (value as is), act/init/reg/con (Keras objects),
# ("fixed", v) = only v is supported, ignore = no effect on the computation.
_COMMON = {"name": "keep", "trainable": "keep", "batch_input_shape": "keep", "input_dim": "keep",
           "activity_regularizer": "reg", "dtype": "dtype", "input_dtype": "ignore",
           "autocast": "ignore", "input_length": "ignore"}
_INIT_REG_CON = {"kernel_initializer": "init", "bias_initializer": "init", "kernel_regularizer": "reg",
                 "bias_regularizer": "reg", "kernel_constraint": "con", "bias_constraint": "con"}
_SPECS: dict[str, dict[str, Any]] = {
    "Dense": {"units": "keep", "activation": "act", "use_bias": "keep", **_INIT_REG_CON,
              "quantization_config": ("fixed", None), "lora_rank": ("fixed", None),
              "lora_alpha": "ignore",
              # Keras 1 names
              "output_dim": "keep", "init": "init", "W_regularizer": "reg", "b_regularizer": "reg",
              "W_constraint": "con", "b_constraint": "con", "bias": "keep"},
    "Activation": {"activation": "act"},
    "Dropout": {"rate": "keep", "noise_shape": "keep", "seed": "keep", "p": "keep"},
    "BatchNormalization": {
        "axis": "axis1", "momentum": "keep", "epsilon": "keep", "center": "keep", "scale": "keep",
        "beta_initializer": "init", "gamma_initializer": "init", "moving_mean_initializer": "init",
        "moving_variance_initializer": "init", "beta_regularizer": "reg", "gamma_regularizer": "reg",
        "beta_constraint": "con", "gamma_constraint": "con", "renorm": ("fixed", False),
        "renorm_clipping": ("fixed", None), "renorm_momentum": "ignore", "fused": "ignore",
        "virtual_batch_size": ("fixed", None), "adjustment": ("fixed", None),
        "synchronized": "ignore",  # one device: synchronized statistics are the batch statistics
        "mode": "keep", "beta_init": "init", "gamma_init": "init"},
    "LayerNormalization": {"axis": "axis1", "epsilon": "keep", "center": "keep", "scale": "keep",
                           "beta_initializer": "init", "gamma_initializer": "init",
                           "beta_regularizer": ("fixed", None), "gamma_regularizer": ("fixed", None),
                           "beta_constraint": ("fixed", None), "gamma_constraint": ("fixed", None),
                           "rms_scaling": ("fixed", False)},
    "LeakyReLU": {"alpha": "keep", "negative_slope": "keep"},
    "PReLU": {"alpha_initializer": "init", "alpha_regularizer": "reg", "alpha_constraint": "con",
              "shared_axes": "keep"},
    "ELU": {"alpha": "keep"},
    "ReLU": {"max_value": "keep", "negative_slope": "keep", "threshold": "keep"},
    "Softmax": {"axis": "axis1"},
    "ThresholdedReLU": {"theta": "keep"},
    "Flatten": {"data_format": "data_format"},
    "Reshape": {"target_shape": "keep", "dims": "keep"},
    "GaussianNoise": {"stddev": "keep", "seed": "keep", "sigma": "keep"},
    "GaussianDropout": {"rate": "keep", "seed": "keep", "p": "keep"},
    "AlphaDropout": {"rate": "keep", "noise_shape": "keep", "seed": "keep"},
    "ActivityRegularization": {"l1": "keep", "l2": "keep"},
}
# Keras 3 spells some options differently (and has no Keras 2 hard_sigmoid).
_WRITE_RENAMES = {"LeakyReLU": {"alpha": "negative_slope"}}
_ACT_TO_KERAS3 = {"swish": "silu", "hard_sigmoid": "graphc>hard_sigmoid_keras2",
                  "hard_sigmoid_keras3": "hard_sigmoid"}
_ACT_FROM_KERAS3 = {"silu": "swish", "hard_sigmoid": "hard_sigmoid_keras3",
                    "graphc>hard_sigmoid_keras2": "hard_sigmoid", "hard_swish": "hard_silu"}
_ACT_TO_KERAS2 = {"hard_sigmoid_keras3": "graphc>hard_sigmoid_keras3"}
_ACT_FROM_KERAS2 = {"graphc>hard_sigmoid_keras3": "hard_sigmoid_keras3"}


def _policy(dtype: str) -> dict:
    return {"module": "keras", "class_name": "DTypePolicy", "config": {"name": dtype},
            "registered_name": None}


def _keras3_object(kind: str, serialized: Any) -> Any:
    if isinstance(serialized, dict) and "class_name" in serialized:
        return {"module": f"keras.{kind}", "class_name": serialized["class_name"],
                "config": _jsonable(serialized.get("config", {})), "registered_name": None}
    return serialized


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:  # numpy scalars
        return value.item()
    return value


def _act_name(fn: Any) -> str:
    name = activations_mod.serialize(fn)
    if activations_mod._TABLE.get(name) is not fn:
        raise UnsupportedKerasConfig(
            f"activation {fn!r} is not a named activation; a config can only refer to activations "
            f"by name (register it and pass custom_objects when loading, or use save_weights)")
    return name


# ---------------------------------------------------------------------------------------
# writing
def _layer_config(layer: Any, style: int) -> dict:
    class_name = type(layer).__name__
    if class_name == "Lambda":
        raise UnsupportedKerasConfig(
            f"layer {layer.name!r} (Lambda) holds Python code, which a model config cannot carry; "
            f"save the weights (save_weights) and rebuild the model in code")
    spec = {**_COMMON, **_SPECS.get(class_name, {})}
    native = layer.get_config()
    out: dict[str, Any] = {}
    for key, value in native.items():
        kind = spec.get(key, "keep")
        if key == "batch_input_shape" and style == 3:
            continue  # Keras 3 puts the input shape on an InputLayer
        if key == "activation":
            name = _act_name(layer.activation)
            value = (_ACT_TO_KERAS3 if style == 3 else _ACT_TO_KERAS2).get(name, name)
        elif key == "dtype":
            value = _policy(value) if style == 3 else value
        elif kind in ("init", "reg", "con") and style == 3:
            value = _keras3_object({"init": "initializers", "reg": "regularizers",
                                    "con": "constraints"}[kind], value)
        key = _WRITE_RENAMES.get(class_name, {}).get(key, key) if style == 3 else key
        out[key] = _jsonable(value)
    if "dtype" not in out:
        from frontends.keras_like import backend as K

        out["dtype"] = _policy(K.floatx()) if style == 3 else K.floatx()
    return out


def model_to_keras_config(model: Any, style: int = 3) -> dict:
    """The architecture as Keras 3 (``style=3``) or Keras 2 (``style=2``) serializes it."""
    layers = []
    input_shape = list(model._batch_input_shape) if model._batch_input_shape is not None else None
    if input_shape is not None:
        from frontends.keras_like import backend as K

        if style == 3:
            layers.append({"module": "keras.layers", "class_name": "InputLayer",
                           "config": {"batch_shape": input_shape, "dtype": K.floatx(),
                                      "sparse": False, "ragged": False, "name": "input_layer",
                                      "optional": False}, "registered_name": None})
        else:  # tf.keras 2.x lists the implicit InputLayer too (Keras 3 relies on it)
            first = model.layers[0].name if model.layers else "input"
            layers.append({"class_name": "InputLayer",
                           "config": {"batch_input_shape": input_shape, "dtype": K.floatx(),
                                      "sparse": False, "ragged": False, "name": f"{first}_input"}})
    for i, layer in enumerate(model.layers):
        config = _layer_config(layer, style)
        if style == 2 and i == 0 and input_shape is not None:
            config["batch_input_shape"] = input_shape
        entry: dict[str, Any] = {"class_name": type(layer).__name__, "config": config}
        if style == 3:
            entry = {"module": "keras.layers", **entry, "registered_name": None}
            if layer.weights and layer.input_shape is not None:
                entry["build_config"] = {"input_shape": list(layer.input_shape)}
        layers.append(entry)
    config: dict[str, Any] = {"name": model.name, "trainable": model.trainable, "layers": layers}
    if input_shape is not None:
        config["build_input_shape"] = input_shape
    if style == 2:
        return {"class_name": "Sequential", "config": config}
    from frontends.keras_like import backend as K

    config["dtype"] = _policy(K.floatx())
    spec: dict[str, Any] = {"module": "keras", "class_name": "Sequential", "config": config,
                            "registered_name": None}
    if input_shape is not None:
        spec["build_config"] = {"input_shape": input_shape}
    return spec


# ---------------------------------------------------------------------------------------
# reading
class _Reader:
    def __init__(self, keras_major: int, custom_objects: dict | None) -> None:
        self.major = keras_major
        self.custom = dict(custom_objects or {})

    # -- Keras objects inside a layer config ----------------------------------------------
    def activation(self, value: Any, where: str) -> Any:
        if value is None:
            return None
        if isinstance(value, dict):  # Keras 3: {"class_name": "function", "config": "relu"}
            if value.get("class_name") == "function":
                value = value.get("config")
            else:
                value = value.get("registered_name") or value.get("class_name")
        if not isinstance(value, str):
            raise UnsupportedKerasConfig(f"{where}: cannot read activation {value!r}")
        if value in self.custom:
            return self.custom[value]
        renames = _ACT_FROM_KERAS3 if self.major >= 3 else _ACT_FROM_KERAS2
        name = renames.get(value, value)
        if name not in activations_mod._TABLE:
            raise UnsupportedKerasConfig(f"{where}: activation {value!r} is not supported (graphc "
                                         f"has {sorted(activations_mod._TABLE)})")
        return activations_mod._TABLE[name]

    def keras_object(self, kind: str, value: Any, where: str) -> Any:
        """An initializer/regularizer/constraint config, its unknown options checked."""
        if value is None or isinstance(value, int | float):
            return value
        module = {"init": initializers_mod, "reg": regularizers_mod, "con": constraints_mod}[kind]
        label = {"init": "initializer", "reg": "regularizer", "con": "constraint"}[kind]
        if isinstance(value, str):
            if value in self.custom:
                return self.custom[value]
            try:
                return module.get(value)
            except ValueError as exc:
                raise UnsupportedKerasConfig(f"{where}: {label} {value!r} is not supported") from exc
        if not isinstance(value, dict) or "class_name" not in value:
            raise UnsupportedKerasConfig(f"{where}: cannot read {label} {value!r}")
        class_name = value.get("registered_name") or value["class_name"]
        if class_name in self.custom:
            return self.custom[class_name](**value.get("config", {}))
        class_name = value["class_name"]
        cls = module._CLASSES.get(class_name)
        if cls is None:
            raise UnsupportedKerasConfig(f"{where}: {label} {class_name!r} is not supported")
        config = dict(value.get("config") or {})
        params = inspect.signature(cls.__init__).parameters
        takes_kwargs = any(p.kind == p.VAR_KEYWORD for p in params.values())
        for key in list(config):
            if key not in params and not takes_kwargs:
                if config[key] is None:  # options newer Keras added, at their no-op value
                    del config[key]
                else:
                    raise UnsupportedKerasConfig(
                        f"{where}: option {key}={config[key]!r} of {label} {class_name} is not "
                        f"supported")
        return cls(**config)

    def dtype(self, value: Any, where: str) -> str | None:
        if isinstance(value, dict):
            value = (value.get("config") or {}).get("name")
        if value is None or value == "float32":
            return None  # Keras' default: the model follows graphc's floatX
        if value not in ("float16", "float64", "bfloat16"):
            raise UnsupportedKerasConfig(f"{where}: dtype policy {value!r} is not supported")
        return value

    def generic(self, config: dict, where: str) -> dict:
        """A custom layer's config: Keras objects and dtype policies made graphc objects."""
        out = {}
        kinds = {"initializers": "init", "regularizers": "reg", "constraints": "con"}
        for key, value in config.items():
            if key == "dtype":
                value = self.dtype(value, where)
                if value is None:
                    continue
            elif key == "activation":
                value = self.activation(value, where)
            elif isinstance(value, dict) and str(value.get("module", "")).startswith("keras."):
                kind = kinds.get(value["module"].split(".")[1])
                if kind:
                    value = self.keras_object(kind, value, where)
            out[key] = value
        return out

    def custom_layer(self, cls: Any, config: dict, where: str) -> Any:
        config = self.generic(config, where)
        params = inspect.signature(cls.__init__).parameters
        # options newer Keras adds to every layer of a kind, at their no-op value
        config = {k: v for k, v in config.items() if v is not None or k in params}
        return cls.from_config(config)

    # -- layers ---------------------------------------------------------------------------
    def layer(self, entry: dict) -> Any:
        class_name = entry.get("class_name")
        config = dict(entry.get("config") or {})
        registered = entry.get("registered_name")
        where = f"layer {config.get('name', '?')!r} ({class_name})"
        for key in (registered, class_name):
            if key and key in self.custom:
                return self.custom_layer(self.custom[key], config, where)
        if class_name not in _SPECS or class_name not in layers_mod._CLASSES:
            raise UnsupportedKerasConfig(
                f"{where}: the layer class {class_name!r} is not supported by graphc (supported: "
                f"{', '.join(sorted(_SPECS))}); pass custom_objects={{'{class_name}': ...}} to "
                f"provide one")
        spec = {**_COMMON, **_SPECS[class_name]}
        kwargs: dict[str, Any] = {}
        for key, value in config.items():
            kind = spec.get(key)
            if kind is None:
                raise UnsupportedKerasConfig(f"{where}: option {key!r} is not supported")
            if isinstance(kind, tuple):
                if value != kind[1]:
                    raise UnsupportedKerasConfig(
                        f"{where}: option {key}={value!r} is not supported (only {kind[1]!r})")
                continue
            if kind == "ignore":
                continue
            if kind == "act":
                value = self.activation(value, where)
            elif kind in ("init", "reg", "con"):
                value = self.keras_object(kind, value, where)
            elif kind == "dtype":
                value = self.dtype(value, where)
                if value is None:
                    continue
            elif kind == "axis1":
                if isinstance(value, list | tuple):
                    if len(value) != 1:
                        raise UnsupportedKerasConfig(f"{where}: {key}={value!r} (several axes) is "
                                                     f"not supported")
                    value = value[0]
            elif kind == "data_format":
                if value not in (None, "channels_last"):
                    raise UnsupportedKerasConfig(f"{where}: data_format={value!r} is not supported")
                continue
            elif key in ("batch_input_shape", "target_shape", "noise_shape", "dims") and value:
                value = tuple(value)
            kwargs[key] = value
        try:
            return layers_mod._CLASSES[class_name](**kwargs)
        except (TypeError, ValueError) as exc:
            raise UnsupportedKerasConfig(f"{where}: {exc}") from exc

    def model(self, spec: Any) -> Any:
        from frontends.keras_like.models import Sequential

        if isinstance(spec, list):  # Keras <= 2.2.2 stored the layer list itself
            spec = {"class_name": "Sequential", "config": spec}
        class_name = spec.get("class_name", "Sequential")
        config = spec.get("config", {})
        if class_name in ("Functional", "Model"):
            config = _linear_chain(config)
        elif class_name != "Sequential":
            raise UnsupportedKerasConfig(f"model class {class_name!r} is not supported: graphc "
                                         f"loads Sequential models (and functional linear chains)")
        if isinstance(config, list):
            config = {"layers": config}
        model = Sequential(name=config.get("name"))
        for entry in config.get("layers", []):
            if entry.get("class_name") == "InputLayer":
                cfg = entry.get("config", {})
                shape = cfg.get("batch_shape") or cfg.get("batch_input_shape")
                if shape is None:
                    raise UnsupportedKerasConfig("an InputLayer without a shape")
                model._batch_input_shape = tuple(shape)
                continue
            model.add(self.layer(entry))
        if model.layers and not model.built:
            shape = config.get("build_input_shape") or (spec.get("build_config") or {}).get(
                "input_shape")
            if shape:
                model.build(tuple(shape))
        if config.get("trainable") is False:
            model.trainable = False
        return model


def _linear_chain(config: dict) -> dict:
    """A functional model whose layers form one chain, as the equivalent Sequential config."""
    layers = config.get("layers", [])
    previous = None
    for entry in layers:
        inbound = entry.get("inbound_nodes") or []
        sources = [name for name in _inbound_names(inbound)]
        ok = (not sources) if previous is None else sources == [previous]
        if not ok or len(inbound) > 1:
            raise UnsupportedKerasConfig(
                f"functional model {config.get('name')!r}: layer {entry.get('name')!r} is not fed by "
                f"exactly the previous layer; graphc loads only Sequential models and linear chains")
        previous = entry.get("name") or entry.get("config", {}).get("name")
    return {"name": config.get("name"), "layers": layers}


def _inbound_names(inbound: list) -> list[str]:
    names: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("class_name") == "__keras_tensor__":
                names.append(node["config"]["keras_history"][0])
                return
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            if len(node) >= 3 and isinstance(node[0], str) and isinstance(node[1], int):
                names.append(node[0])  # Keras 2: [layer_name, node_index, tensor_index, kwargs]
                return
            for v in node:
                walk(v)

    walk(inbound)
    return names


def model_from_keras_config(spec: Any, keras_major: int = 3, custom_objects: dict | None = None) -> Any:
    """A graphc Sequential from a Keras 3/2/1 (or graphc) model config."""
    return _Reader(keras_major, custom_objects).model(spec)


def reader(keras_major: int, custom_objects: dict | None = None) -> _Reader:
    return _Reader(keras_major, custom_objects)


def is_named(fn: Callable, table: dict) -> bool:
    return table.get(getattr(fn, "__name__", None)) is fn
