"""Finished runs: reading one without Spark (`finished_run`), what an incremental run or
`transform` takes from an earlier one (`previous_run`), the HTML report (`report`), the
held-out accuracy of the features (`evaluate`) and the phone export (`export`).

May import: settings, io, fit, inference.
"""
