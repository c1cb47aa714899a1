"""The training machinery shared by models: data preparation, compiled functions, the fit loop."""
