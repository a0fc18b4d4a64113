"""Write: the feature rows projected onto the fitted PCA (`projection`), the fitted model in
Spark ML's PipelineModel layout (`model_files`), the classifier head as its last stages
(`head_files`), the run's manifest, one typed record written last (`manifest`); the run's
metrics pushed to a Pushgateway (`run_metrics`) and the driver's log kept under `_logs/`
(`run_log`).
"""
