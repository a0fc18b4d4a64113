"""The one value made from the user-level S3 settings (and the AWS variables): S3A's
configuration and pyarrow's options from it agree, for every credentials mode."""

import pytest

from fruits.io.s3_settings import PROVIDERS, SECRET_KEYS, S3Settings
from fruits.settings.config import build_config
from fruits.settings.errors import UserError


def conf(environ=None, **options):
    return S3Settings.of(build_config(options), environ or {}).hadoop_conf(environ or {})


IRSA = {"AWS_ROLE_ARN": "arn:aws:iam::1:role/r", "AWS_WEB_IDENTITY_TOKEN_FILE": __file__}  # any existing file


def test_the_credentials_provider_is_always_explicit():
    assert (
        conf(IRSA, s3_credentials="irsa")["fs.s3a.aws.credentials.provider"]
        == "com.amazonaws.auth.WebIdentityTokenCredentialsProvider"
    )
    assert conf()["fs.s3a.aws.credentials.provider"] == "com.amazonaws.auth.DefaultAWSCredentialsProviderChain"
    assert not any(key in conf(IRSA, s3_credentials="irsa") for key in ("fs.s3a.access.key", "fs.s3a.secret.key"))
    with pytest.raises(UserError, match="irsa needs the pod's web identity token"):
        conf({}, s3_credentials="irsa")


def test_static_credentials_come_from_the_environment():
    result = conf({"AWS_ACCESS_KEY_ID": "AK", "AWS_SECRET_ACCESS_KEY": "SK"}, s3_credentials="static")
    assert result["fs.s3a.access.key"] == "AK" and result["fs.s3a.secret.key"] == "SK"
    assert result["fs.s3a.aws.credentials.provider"] == PROVIDERS["static"]
    with_token = conf(
        {"AWS_ACCESS_KEY_ID": "AK", "AWS_SECRET_ACCESS_KEY": "SK", "AWS_SESSION_TOKEN": "T"}, s3_credentials="static"
    )
    assert with_token["fs.s3a.aws.credentials.provider"] == PROVIDERS["static-session"]
    with pytest.raises(UserError, match="static needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"):
        conf({}, s3_credentials="static")


def test_without_keys_the_configuration_is_the_same_with_static_keys_left_in_the_environment():
    """For a process configured elsewhere (the History Server, whose settings the chart renders)."""
    environ = {"AWS_ACCESS_KEY_ID": "AK", "AWS_SECRET_ACCESS_KEY": "SK", "AWS_SESSION_TOKEN": "T"}
    s3 = S3Settings.of(build_config({"s3_endpoint": "http://minio:9000", "s3_credentials": "static"}), {})
    portable, here = s3.hadoop_conf_without_keys(), s3.hadoop_conf(environ)
    assert portable["fs.s3a.aws.credentials.provider"] == PROVIDERS["static-environment"]
    assert not any(key in portable for key in SECRET_KEYS) and "AK" not in portable.values()
    assert {k: v for k, v in here.items() if k not in (*SECRET_KEYS, "fs.s3a.aws.credentials.provider")} == {
        k: v for k, v in portable.items() if k != "fs.s3a.aws.credentials.provider"
    }
    irsa = S3Settings.of(build_config({"s3_credentials": "irsa"}), {})
    assert irsa.hadoop_conf_without_keys() == irsa.hadoop_conf(IRSA)  # nothing checked, nothing else differs


def test_endpoint_region_and_tls_from_options_or_aws_variables():
    assert "fs.s3a.endpoint" not in conf()  # AWS itself
    local = conf({"AWS_ENDPOINT_URL": "http://127.0.0.1:9000", "AWS_REGION": "eu-west-1"})
    assert local["fs.s3a.endpoint"] == "127.0.0.1:9000"
    assert local["fs.s3a.connection.ssl.enabled"] == "false"
    assert local["fs.s3a.endpoint.region"] == "eu-west-1"
    explicit = conf(
        {"AWS_ENDPOINT_URL": "http://ignored"},
        s3_endpoint="https://minio.example:9000",
        s3_path_style=True,
        s3_region="us-east-2",
    )
    assert explicit["fs.s3a.endpoint"] == "minio.example:9000"
    assert explicit["fs.s3a.connection.ssl.enabled"] == "true"
    assert explicit["fs.s3a.path.style.access"] == "true" and explicit["fs.s3a.endpoint.region"] == "us-east-2"
    on_aws = conf({"AWS_DEFAULT_REGION": "ap-south-1"})
    assert on_aws["fs.s3a.endpoint"] == "s3.ap-south-1.amazonaws.com"  # honoured by hadoop-aws 3.3.1 and later
    assert "fs.s3a.endpoint.region" not in on_aws
    assert conf(s3_tls=False)["fs.s3a.connection.ssl.enabled"] == "false"


def test_s3_scheme_is_served_by_s3a():
    assert conf()["fs.s3.impl"] == conf()["fs.s3a.impl"] == "org.apache.hadoop.fs.s3a.S3AFileSystem"


def test_missing_connector_jars_are_explained():
    text = (
        "java.lang.RuntimeException: java.lang.ClassNotFoundException: "
        "Class org.apache.hadoop.fs.s3a.S3AFileSystem not found"
    )
    assert "make jars" in S3Settings().explain(text, "s3a://b/x")


@pytest.mark.parametrize("mode", ["irsa", "static", "default"])
@pytest.mark.parametrize(
    "endpoint, path_style", [(None, False), ("http://127.0.0.1:9000", True), ("https://minio.example:9000", False)]
)
def test_both_clients_get_the_same_settings(mode, endpoint, path_style, tmp_path, monkeypatch):
    token = tmp_path / "token"
    token.write_text("jwt")
    environ = {
        "AWS_REGION": "eu-west-1",
        "AWS_ACCESS_KEY_ID": "AK",
        "AWS_SECRET_ACCESS_KEY": "SK",
        "AWS_ROLE_ARN": "arn:aws:iam::1:role/r",
        "AWS_WEB_IDENTITY_TOKEN_FILE": str(token),
    }
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    s3 = S3Settings.of(
        build_config({"s3_credentials": mode, "s3_endpoint": endpoint, "s3_path_style": path_style}), environ
    )
    hadoop, arrow = s3.hadoop_conf(environ), s3.arrow_options("bucket")
    assert hadoop["fs.s3a.aws.credentials.provider"] == PROVIDERS[mode] and s3.credentials == mode
    if endpoint:
        assert hadoop["fs.s3a.endpoint"] == arrow["endpoint_override"] == endpoint.split("://")[1]
        assert hadoop["fs.s3a.connection.ssl.enabled"] == str(arrow["scheme"] == "https").lower()
        assert (
            hadoop["fs.s3a.path.style.access"]
            == str(path_style).lower()
            == str(not arrow.get("force_virtual_addressing", False)).lower()
        )
        assert hadoop["fs.s3a.endpoint.region"] == arrow["region"] == "eu-west-1"
    else:
        assert hadoop["fs.s3a.endpoint"] == f"s3.{arrow['region']}.amazonaws.com"
    assert int(hadoop["fs.s3a.connection.establish.timeout"]) == arrow["connect_timeout"] * 1000
    assert int(hadoop["fs.s3a.connection.timeout"]) == arrow["request_timeout"] * 1000
    assert not any("secret" in str(value).lower() or value == "SK" for value in arrow.values())  # keys stay out
