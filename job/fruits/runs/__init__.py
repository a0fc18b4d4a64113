"""Runs: a finished run, the one type every reader of earlier runs uses (`finished_run`), and
what an incremental run or `transform` takes from one (`reuse`).
"""
