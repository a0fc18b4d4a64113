"""Settings: every option of the job defined once (`options`: one field definition for the
CLI, config files, spark-submit arguments and the chart), the job's options (`config`), the
catalogue of CNN backbones the options choose from (`backbones`; no Keras), and the
user-error type every stage raises (`errors`).
"""
