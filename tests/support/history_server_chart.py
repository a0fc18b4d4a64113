"""The chart's History Server as it renders for a test: the Deployment's container and the
properties file of its ConfigMap (shared by the process test and the image test)."""

from helm_python import Chart

from support.chart_render import CHART, render


def chart_history_server(s3_endpoint: str, port: int, events: str) -> tuple[dict, str]:
    """The Deployment's container and its properties file, as the chart renders them for a
    MinIO-like S3 with static keys (the Secret's keys reach the pod as environment variables)."""
    values = {
        "job": {
            "input": f"{events}/in",
            "output": f"{events}/out",
            "s3Endpoint": s3_endpoint,
            "s3PathStyle": True,
            "s3Credentials": "static",
        },
        "cluster": {"eventLogDir": events, "s3Secret": "s3-keys"},
        "historyServer": {"enabled": True, "port": port, "updateInterval": "1s"},
    }
    objects = render(Chart.load(str(CHART)), values)
    (deployment,) = objects["Deployment"]
    (config_map,) = [c for c in objects["ConfigMap"] if c["metadata"]["name"] == deployment["metadata"]["name"]]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    (properties,) = config_map["data"].values()
    return container, properties
