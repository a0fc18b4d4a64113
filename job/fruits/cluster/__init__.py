"""Running the job on Kubernetes through the spark-operator: the cluster's settings
(`cluster_config`), the SparkApplication built from the job's and the cluster's settings
(`spark_application`), the official API client for everything that writes, follows or watches
(`kube`), plain reads for the commands that only read, without importing that client
(`reads`), the one wording of the API's failures both use (`api_errors`), riding out an API
server that cannot answer (`retry`), what an application's status means (`states`), the
least-privilege S3 policies of a run and of the History Server (`iam`), and the chart's History
Server as `fruitsctl ui` finds it (`history_server`), and the driver log a run kept under its
output, for `fruitsctl logs` once the pod is gone (`kept_logs`). It imports only `settings` and `spark_session`
(the Spark settings every run needs), so the cluster commands run on the base install.
"""
