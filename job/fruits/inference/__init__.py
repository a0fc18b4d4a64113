"""Inference: image bytes to RGB arrays (`decode`), the CNN on LiteRT or Keras with its
conversion and caches (`runtimes`), the Spark featurize stage that runs them in batches inside
the Python workers and gathers the fit's statistics in the same pass (`featurize`), the
workers' daemon (`spark_worker`) and their live image counts (`progress_counter`).

May import: settings, io, fit.
"""
