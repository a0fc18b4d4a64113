"""Results: a finished run's tables read without Spark (`run_results`), the HTML report
(`report`), the held-out accuracy of the features (`evaluate`) and the phone export
(`export`). Readers of finished runs: the job never imports them.
"""
