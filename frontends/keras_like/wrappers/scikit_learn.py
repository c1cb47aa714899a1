"""scikit-learn estimators around model-building functions (Keras 2's ``KerasClassifier`` and
``KerasRegressor``), for ``GridSearchCV``, ``cross_val_score`` and pipelines.

``build_fn(**params)`` returns a compiled model; the remaining parameters go to
``build_fn``, ``fit``, ``predict`` or ``evaluate``, whichever accepts them.

The estimators ``clone`` (their parameters are ``build_fn`` and ``**sk_params``) and pickle, fitted
or not: a fitted one carries its model, whose compiled graphc functions are dropped when pickled
and rebuilt on first use after unpickling. That is what lets ``GridSearchCV(n_jobs=2)`` and
joblib's Dask backend ship them to other processes and machines (``build_fn`` must then be
importable or picklable: a module-level function or a method of a picklable object).
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Callable
from typing import Any

import numpy as np

from frontends.keras_like.models import Sequential
from frontends.keras_like.utils.np_utils import to_categorical

try:  # scikit-learn is optional: its base classes give tags and the estimator protocol extras
    from sklearn.base import BaseEstimator as _Base
    from sklearn.base import ClassifierMixin as _ClassifierMixin
    from sklearn.base import RegressorMixin as _RegressorMixin
except ImportError:  # pragma: no cover - exercised only without scikit-learn
    _Base, _ClassifierMixin, _RegressorMixin = object, object, object


def _accepted(fn: Callable, params: dict) -> dict:
    names = inspect.signature(fn).parameters
    return {k: v for k, v in params.items() if k in names}


class BaseWrapper(_Base):
    def __init__(self, build_fn: Callable[..., Sequential] | None = None, **sk_params: Any) -> None:
        self.build_fn = build_fn
        self.sk_params = sk_params
        self._check_params(sk_params)

    def _check_params(self, params: dict) -> None:
        legal = set()
        for fn in (Sequential.fit, Sequential.predict, Sequential.evaluate, self._builder()):
            legal.update(inspect.signature(fn).parameters)
        legal.add("nb_epoch")
        for name in params:
            if name not in legal:
                raise ValueError(f"{name!r} is not a legal parameter of build_fn, fit, predict or "
                                 f"evaluate")

    def _builder(self) -> Callable[..., Sequential]:
        if self.build_fn is not None:
            return self.build_fn
        if callable(self):  # subclasses may define __call__ to build the model
            return self.__call__
        raise ValueError("give build_fn, a function returning a compiled model")

    # scikit-learn's parameter protocol (parameters live in **sk_params, not the signature)
    def get_params(self, deep: bool = True) -> dict:
        params = copy.deepcopy(self.sk_params) if deep else dict(self.sk_params)
        params["build_fn"] = self.build_fn
        return params

    def set_params(self, **params: Any) -> BaseWrapper:
        self._check_params({k: v for k, v in params.items() if k != "build_fn"})
        if "build_fn" in params:
            self.build_fn = params.pop("build_fn")
        self.sk_params.update(params)
        return self

    def _fit_args(self, fn: Callable, override: dict) -> dict:
        args = _accepted(fn, self.sk_params)
        if "nb_epoch" in self.sk_params and fn is Sequential.fit:
            args["epochs"] = self.sk_params["nb_epoch"]
        args.update(override)
        return args

    def fit(self, x: Any, y: Any, **kwargs: Any) -> Any:
        builder = self._builder()
        self.model = builder(**_accepted(builder, self.sk_params))
        y = np.asarray(y)
        if _categorical(self.model) and y.ndim == 1:
            y = to_categorical(y)
        self.history_ = self.model.fit(x, y, **self._fit_args(Sequential.fit, kwargs))
        return self.history_

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "model")

    def _fitted_model(self) -> Sequential:
        if not hasattr(self, "model"):
            try:
                from sklearn.exceptions import NotFittedError
            except ImportError:  # pragma: no cover - without scikit-learn
                NotFittedError = AttributeError  # noqa: N806
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet; call fit first")
        return self.model


def _categorical(model: Sequential) -> bool:
    """Whether the model's loss wants one-hot targets (by name, function or loss object)."""
    from frontends.keras_like import losses

    loss = getattr(model, "loss", None)
    fn = getattr(type(loss), "fn", None) if isinstance(loss, losses.Loss) else loss
    if isinstance(fn, str):
        fn = losses._TABLE.get(fn)
    return fn is losses.categorical_crossentropy


class KerasClassifier(_ClassifierMixin, BaseWrapper):
    """Class labels of any kind in, class labels out (``predict``), probabilities (``predict_proba``)."""

    def fit(self, x: Any, y: Any, **kwargs: Any) -> KerasClassifier:
        y = np.asarray(y)
        if y.ndim == 2 and y.shape[1] > 1:
            self.classes_ = np.arange(y.shape[1])
            target = y
        else:
            self.classes_, target = np.unique(y.reshape(-1), return_inverse=True)
        self.n_classes_ = len(self.classes_)
        BaseWrapper.fit(self, x, target, **kwargs)
        return self

    def predict(self, x: Any, **kwargs: Any) -> np.ndarray:
        model = self._fitted_model()
        classes = model.predict_classes(x, **self._fit_args(Sequential.predict_classes, kwargs))
        return self.classes_[np.asarray(classes).reshape(-1)]

    def predict_proba(self, x: Any, **kwargs: Any) -> np.ndarray:
        probs = self._fitted_model().predict(x, **self._fit_args(Sequential.predict, kwargs))
        if probs.shape[1] == 1:  # one sigmoid unit: the two class probabilities
            probs = np.hstack([1 - probs, probs])
        return probs

    def score(self, x: Any, y: Any, sample_weight: Any = None, **kwargs: Any) -> float:
        """Accuracy from ``evaluate`` (the model must be compiled with ``metrics=['accuracy']``)."""
        model = self._fitted_model()
        y = np.asarray(y)
        if y.ndim == 1 or y.shape[-1] == 1:
            y = np.searchsorted(self.classes_, y)
        if _categorical(model) and y.ndim == 1:
            y = to_categorical(y, self.n_classes_)
        args = self._fit_args(Sequential.evaluate, {"verbose": 0, **kwargs})
        outputs = model.evaluate(x, y, sample_weight=sample_weight, **args)
        outputs = outputs if isinstance(outputs, list) else [outputs]
        for name, value in zip(self.model.metrics_names, outputs):
            if name in ("accuracy", "acc"):
                return float(value)
        raise ValueError("KerasClassifier.score needs the model compiled with metrics=['accuracy']")


class KerasRegressor(_RegressorMixin, BaseWrapper):
    def fit(self, x: Any, y: Any, **kwargs: Any) -> KerasRegressor:
        BaseWrapper.fit(self, x, y, **kwargs)
        return self

    def predict(self, x: Any, **kwargs: Any) -> np.ndarray:
        predictions = self._fitted_model().predict(x, **self._fit_args(Sequential.predict, kwargs))
        return np.squeeze(predictions, axis=-1) if predictions.shape[-1] == 1 else predictions

    def score(self, x: Any, y: Any, sample_weight: Any = None, **kwargs: Any) -> float:
        """Minus the loss (scikit-learn maximizes scores)."""
        args = self._fit_args(Sequential.evaluate, {"verbose": 0, **kwargs})
        outputs = self._fitted_model().evaluate(x, y, sample_weight=sample_weight, **args)
        return -float(outputs[0] if isinstance(outputs, list) else outputs)
