"""Files and S3: the S3 settings both clients share and storage errors in one sentence
(`s3_settings`), the job's one way to files through pyarrow (`storage`: local folders and S3,
listing, whole-file commits), the layout of a run's output and what a run may delete
(`output`), matrices as Arrow list columns (`vectors`), Spark's S3A jars (`s3a_jars`) and a
dataset folder put into S3 (`upload`).
"""
