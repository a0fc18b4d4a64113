"""Write: the feature rows projected onto the fitted PCA (`projection`), the fitted model in
Spark ML's PipelineModel layout (`model_files`) and the run's manifest, one typed record
written last (`manifest`).
"""
