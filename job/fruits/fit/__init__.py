"""Fit: the moments of the feature rows (`moments`) tallied per partition as they are made
(`tally`), the scaler + PCA fitted from them and the projection stage (`reduce`), and the
fitted model written in Spark ML's PipelineModel layout (`model_files`).

May import: settings, io.
"""
