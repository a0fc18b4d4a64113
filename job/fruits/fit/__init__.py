"""Fit: the moments of the feature rows (`moments`) tallied per partition as they are made
and merged on the executors (`tally`), and the scaler + PCA fitted from them (`reduce`).
"""
