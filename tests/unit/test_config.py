import json

import pytest

from fruits.entrypoint import argument_parser
from fruits.settings.config import DEFAULTS, JobConfig, build_config, load_config_file, to_argv
from fruits.settings.errors import UserError


def test_defaults_need_no_input():
    assert build_config() == JobConfig()
    assert DEFAULTS.backbone == "mobilenet_v2" and DEFAULTS.variance == 0.95 and DEFAULTS.k is None


def test_strings_are_converted_like_command_line_values():
    config = build_config({"image-size": "96", "variance": "0.9", "overwrite": "true"})
    assert (config.image_size, config.variance, config.overwrite) == (96, 0.9, True)


@pytest.mark.parametrize(
    "given, message",
    [
        ({"image_size": "big"}, "--image-size must be int, got 'big'"),
        ({"image_size": 4}, "--image-size must be between 32 and 1024; got 4"),
        ({"variance": 1.5}, "--variance must be between 0.01 and 1.0; got 1.5"),
        ({"backbone": "alexnet"}, "--backbone must be one of mobilenet_v2, resnet50, vgg16; got 'alexnet'"),
        ({"k": 10, "variance": 0.9}, "Give either --variance or --k, not both."),
        ({"colour": "red"}, "Unknown option 'colour'"),
        ({"weights": "/nowhere/w.h5"}, "Weights file '/nowhere/w.h5' does not exist"),
        ({"overwrite": "maybe"}, "--overwrite must be bool"),
    ],
)
def test_bad_values_name_the_option_and_the_fix(given, message):
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")):
        build_config(given)


def test_config_file_yaml_and_json_and_cli_overrides(tmp_path):
    (tmp_path / "c.yaml").write_text("image-size: 96\nk: 20\ninput: /data\n")
    (tmp_path / "c.json").write_text(json.dumps({"image_size": 160}))
    config = build_config(load_config_file(tmp_path / "c.yaml"), {"k": 30})
    assert (config.image_size, config.k, config.input) == (96, 30, "/data")
    assert build_config(load_config_file(tmp_path / "c.json")).image_size == 160


@pytest.mark.parametrize("content, message", [("[1, 2]", "must hold a mapping"), ("a: [", "not valid YAML/JSON")])
def test_bad_config_files(tmp_path, content, message):
    (tmp_path / "bad.yaml").write_text(content)
    with pytest.raises(UserError, match=message):
        load_config_file(tmp_path / "bad.yaml")
    with pytest.raises(UserError, match="does not exist"):
        load_config_file(tmp_path / "missing.yaml")


def test_argv_round_trips_through_the_job_entry_point(weights):
    config = build_config(
        {
            "input": "s3a://b/in",
            "output": "s3a://b/out",
            "weights": weights,
            "k": 12,
            "image_size": 96,
            "overwrite": True,
            "partitions": 8,
        }
    )
    argv = to_argv(config)
    assert "--variance" not in argv and "--backbone" not in argv  # defaults stay implicit
    parsed = {k: v for k, v in vars(argument_parser().parse_args(argv)).items() if k != "config_file"}
    assert build_config(parsed) == config
