"""The tutorial's grid search on a Dask cluster through joblib's dask backend (README: "Grid
search on a Dask cluster"). A LocalCluster of two worker processes stands in for the machines;
the fits must run inside the workers."""

import numpy as np
import pytest

pytest.importorskip("sklearn")
pytest.importorskip("dask.distributed", reason="dask.distributed is not installed "
                    "(pip install 'dask[distributed]'); it is an optional dependency")


def build_on_worker(nodes=10, lr=0.001):
    """The tutorial's model, refusing to be built anywhere but on a Dask worker."""
    from dask.distributed import get_worker

    from frontends.keras_like import optimizers
    from frontends.keras_like.layers import Activation, Dense
    from frontends.keras_like.models import Sequential

    get_worker()  # raises ValueError outside a worker
    model = Sequential([Dense(nodes, kernel_initializer="uniform", input_dim=64), Activation("relu"),
                        Dense(10), Activation("softmax")])
    model.compile(loss="categorical_crossentropy", optimizer=optimizers.RMSprop(lr=lr),
                  metrics=["accuracy"])
    return model


def test_grid_search_on_a_dask_cluster():
    import joblib
    from dask.distributed import Client, LocalCluster, get_task_stream
    from sklearn.datasets import load_digits
    from sklearn.model_selection import GridSearchCV

    from frontends.keras_like.wrappers.scikit_learn import KerasClassifier

    digits = load_digits()
    x, y = digits.data[:450] / 16.0, digits.target[:450]
    model = KerasClassifier(build_fn=build_on_worker, epochs=8, batch_size=64, verbose=0)
    grid = GridSearchCV(model, {"nodes": [16, 32], "lr": [0.001, 0.01]}, cv=3, refit=False,
                        error_score="raise", n_jobs=-1)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                      silence_logs=40) as cluster, Client(cluster) as client:
        with get_task_stream(client) as tasks, joblib.parallel_backend("dask"):
            grid.fit(x, y)
        workers_used = {task["worker"] for task in tasks.data}
    assert len(grid.cv_results_["params"]) == 4
    assert np.all(np.isfinite(grid.cv_results_["mean_test_score"]))
    assert grid.best_params_["lr"] == 0.01 and grid.best_score_ > 0.75
    assert len(workers_used) == 2
