"""Featurize: image bytes to RGB arrays (`decode`), the backbone on LiteRT or Keras with its
conversion and caches (`runtimes`), the fixed photos that calibrate the int8 model
(`calibration`), the backbone prepared on the driver and loaded once per
worker (`backbone_model`), the featurize task and stage that run them in batches inside the
Python workers and tally the fit's statistics in the same pass (`partitions`), the workers'
daemon (`spark_worker`) and their live image counts (`progress_counter`).
"""
