"""Fit: the moments of the feature rows (`moments`) tallied per partition as they are made
and merged on the executors (`tally`), the scaler + PCA fitted from them (`reduce`), and the
classifier head fitted in Spark ML on the projected rows (`classifier`), scored on the rows
`held_out` keeps apart.
"""
