"""Running the job on Kubernetes through the spark-operator: settings, manifest, API client."""
