"""What a kept driver log leaves out: secrets, in every spelling a log line may carry them."""

import sys

import pytest

from fruits.settings.errors import UserError
from fruits.write.run_log import TeeLog, ending, redact

CANARY = "canary-secret-7Qx2b9Lw"


@pytest.mark.parametrize(
    "line",
    [
        f"spark.hadoop.fs.s3a.secret.key={CANARY}",
        f"fs.s3a.session.token: {CANARY}",
        f"'aws_secret_access_key': '{CANARY}'",
        f"AWS_SESSION_TOKEN={CANARY}",
        f"a message quoting the key itself: {CANARY}",
    ],
)
def test_secrets_are_redacted(line, monkeypatch):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", CANARY)
    redacted = redact(f"before\n{line}\nafter")
    assert CANARY not in redacted and "***" in redacted and redacted.startswith("before\n")


def test_other_settings_stay():
    line = "spark.hadoop.fs.s3a.endpoint=http://minio:9000 fs.s3a.access.key.provider=x"
    assert redact(line) == line


def test_the_tee_copies_what_the_driver_prints_and_still_prints_it(capsys):
    log = TeeLog()
    with log.capturing():
        print("to stdout")
        print("to stderr", file=sys.stderr)
    assert log.text() == "to stdout\nto stderr\n"
    assert capsys.readouterr() == ("to stdout\n", "to stderr\n")


def test_the_log_ends_with_how_the_attempt_ended():
    assert ending(None) == "Run complete.\n"
    assert (
        ending(UserError("Input 'x' does not exist: check --input."))
        == "Error: Input 'x' does not exist: check --input.\n"
    )
    try:
        raise RuntimeError("executor lost")
    except RuntimeError as exc:
        assert ending(exc).startswith("Traceback") and "RuntimeError: executor lost" in ending(exc)
