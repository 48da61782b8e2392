"""Tools beside the pipeline: the benchmark, the pull-request report and running the dvc command line."""
