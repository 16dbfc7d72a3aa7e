"""Hosting on Spaces, SageMaker's environment, and pushing to the hub — all offline."""

import argparse
import http.server
import importlib.machinery
import os
import json
import sys
import threading
import time
import types

import pytest

from whisper_studio import hosting, sagemaker, sharing
from whisper_studio.errors import ConfigError, JobError, OfflineError, StudioError

SPACE_VARS = ("SPACE_ID", "SYSTEM", "SPACES_ZERO_GPU", hosting.ADMIN_PASSWORD_ENV)


@pytest.fixture()
def clean_env(monkeypatch):
    for name in SPACE_VARS:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


# --- Spaces -------------------------------------------------------------------------------------------
def test_local_machine_trains_without_password(clean_env):
    assert not hosting.on_spaces()
    policy = hosting.training_policy()
    assert policy.offered and not policy.needs_password
    assert hosting.check_password(None)


def test_public_space_without_secret_locks_training_and_points_to_duplicate(clean_env):
    clean_env.setenv("SPACE_ID", "alice/whisper-studio")
    clean_env.setenv("SYSTEM", "spaces")
    policy = hosting.training_policy()
    assert not policy.offered
    assert hosting.ADMIN_PASSWORD_ENV in policy.reason
    assert "https://huggingface.co/spaces/alice/whisper-studio?duplicate=true" in policy.reason
    assert not hosting.check_password("anything")


def test_space_with_secret_needs_the_password(clean_env):
    clean_env.setenv("SPACE_ID", "alice/whisper-studio")
    clean_env.setenv(hosting.ADMIN_PASSWORD_ENV, "s3cret")
    policy = hosting.training_policy()
    assert policy.offered and policy.needs_password
    assert hosting.check_password("s3cret")
    assert not hosting.check_password("s3cre")
    assert not hosting.check_password(None)


def test_require_admin_is_the_one_rule_for_actions_on_the_server(clean_env):
    """Training, stopping, pushing and reading server files: open on one's own machine without a password;
    with a password set (self-hosted or a Space) it needs it; a Space without the secret is locked."""
    hosting.require_admin(None)  # one's own machine, no password
    assert hosting.local_paths_allowed()
    hosting.refuse_local_path("a folder")  # allowed: no error
    clean_env.setenv(hosting.ADMIN_PASSWORD_ENV, "s3cret")
    with pytest.raises(hosting.AccessError, match="Wrong or missing admin password"):
        hosting.require_admin("", "Pushing to the hub")
    hosting.require_admin("s3cret")
    clean_env.setenv("SPACE_ID", "alice/whisper-studio")
    assert not hosting.local_paths_allowed()
    with pytest.raises(hosting.AccessError, match="does not read a folder") as err:
        hosting.refuse_local_path("a folder")
    assert "duplicate=true" in str(err.value)
    with pytest.raises(hosting.AccessError, match="pushing to the hub"):
        hosting.require_admin("s3cre", "Pushing to the hub")
    hosting.require_admin("s3cret")
    clean_env.delenv(hosting.ADMIN_PASSWORD_ENV)
    with pytest.raises(hosting.AccessError, match="locked on this public Space") as err:
        hosting.require_admin("anything", "Pushing to the hub")
    assert isinstance(err.value, StudioError) and "anything" not in str(err.value)


def test_zero_gpu_decorates_inference_and_offers_no_training(clean_env):
    calls = []
    fake = types.ModuleType("spaces")

    def GPU(duration=60):  # the real decorator factory's shape
        def wrap(fn):
            def inner(*a, **k):
                calls.append(duration)
                return fn(*a, **k)

            return inner

        return wrap

    fake.GPU = GPU
    fake.__spec__ = importlib.machinery.ModuleSpec("spaces", None)  # find_spec looks at it
    clean_env.setitem(sys.modules, "spaces", fake)
    clean_env.setenv("SPACE_ID", "alice/whisper-studio")
    clean_env.setenv("SPACES_ZERO_GPU", "true")
    assert hosting.zero_gpu()

    @hosting.gpu(duration=30)
    def infer(x):
        return x * 2

    assert infer(21) == 42 and calls == [30]
    policy = hosting.training_policy()
    assert not policy.offered and "ZeroGPU" in policy.reason


def test_gpu_decorator_is_a_no_op_off_zero_gpu(clean_env):
    def f():
        return 1

    assert hosting.gpu()(f) is f


# --- SageMaker ------------------------------------------------------------------------------------------
def test_sagemaker_environment_and_defaults(tmp_path, monkeypatch):
    for name in [k for k in os.environ if k.startswith("SM_")]:
        monkeypatch.delenv(name)
    assert sagemaker.environment() is None
    monkeypatch.setenv("SM_MODEL_DIR", str(tmp_path / "model"))
    monkeypatch.setenv("SM_OUTPUT_DATA_DIR", str(tmp_path / "output"))
    monkeypatch.setenv("SM_CHANNEL_TRAIN", str(tmp_path / "cv" / "mr"))
    monkeypatch.setenv("SM_NUM_GPUS", "4")
    env = sagemaker.environment()
    assert env.channels == {"train": tmp_path / "cv" / "mr"} and env.num_gpus == 4
    args = sagemaker.apply_defaults(argparse.Namespace(source=None, path=None, out=None), env)
    assert (args.source, args.path, args.out) == ("cv-folder", str(tmp_path / "cv" / "mr"), str(tmp_path / "output" / "run"))
    # An explicit choice wins over the environment.
    args = sagemaker.apply_defaults(argparse.Namespace(source="hub", path=None, out="/x"), env)
    assert (args.source, args.out) == ("hub", "/x")


def test_sagemaker_hyperparameters_become_switches():
    argv = ["--epochs", "3", "--load_in_8bit", "False", "--learning_rate", "0.001", "--language", "mr"]
    assert sagemaker.normalize_argv(argv, {"--load-in-8bit": "--no-8bit"}) == [
        "--epochs", "3", "--no-8bit", "--learning-rate", "0.001", "--language", "mr"
    ]
    assert sagemaker.normalize_argv(["--load-in-8bit", "True"], {"--load-in-8bit": "--no-8bit"}) == []
    # 8-bit defaults to "auto" now: the entry maps True to an explicit "on".
    pair = {"--load-in-8bit": ("--8bit=on", "--no-8bit")}
    assert sagemaker.normalize_argv(["--load_in_8bit", "True"], pair) == ["--8bit=on"]
    assert sagemaker.normalize_argv(["--load_in_8bit", "False"], pair) == ["--no-8bit"]


def test_sagemaker_publish_copies_adapter_and_records(tmp_path):
    run = tmp_path / "run"
    (run / "adapter").mkdir(parents=True)
    (run / "adapter" / "adapter_config.json").write_text("{}")
    (run / "metrics.jsonl").write_text('{"step": 1}\n')
    env = sagemaker.SageMakerEnv(model_dir=tmp_path / "model", output_data_dir=tmp_path / "out")
    sagemaker.publish(run, env)
    assert (tmp_path / "model" / "adapter_config.json").is_file()
    assert (tmp_path / "out" / "metrics.jsonl").read_text() == '{"step": 1}\n'


# --- pushing to the hub -----------------------------------------------------------------------------------
@pytest.fixture()
def run_with_adapter(tmp_path):
    run = tmp_path / "run"
    (run / "adapter").mkdir(parents=True)
    (run / "adapter" / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA"}))
    return run


def test_push_needs_an_adapter_a_repo_id_and_a_token(tmp_path, run_with_adapter, monkeypatch):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HUGGING_FACE_HUB_TOKEN", raising=False)
    with pytest.raises(JobError, match="no adapter"):
        sharing.push_run(tmp_path, "me/x", token="t")
    with pytest.raises(ConfigError, match="OWNER/NAME"):
        sharing.push_run(run_with_adapter, "not a repo", token="t")
    with pytest.raises(ConfigError, match="HF_TOKEN"):
        sharing.push_run(run_with_adapter, "me/whisper-mr", allow_env_token=True)
    with pytest.raises(ConfigError, match="token field"):
        sharing.push_run(run_with_adapter, "me/whisper-mr")


def test_a_ui_push_never_uses_the_environment_token(run_with_adapter, monkeypatch):
    """On a Space HF_TOKEN is the owner's secret: a UI request (allow_env_token=False, the default) must bring
    its own token; only the command line falls back to the environment."""
    monkeypatch.setenv("HF_TOKEN", "hf_owner_secret")
    monkeypatch.setenv("HUGGING_FACE_HUB_TOKEN", "hf_owner_secret")
    with pytest.raises(ConfigError, match="token field") as err:
        sharing.push_run(run_with_adapter, "me/whisper-mr", token="  ")
    assert "hf_owner_secret" not in str(err.value)
    # The command line may use it: it gets as far as the (offline) network check.
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(OfflineError):
        sharing.push_run(run_with_adapter, "me/whisper-mr", allow_env_token=True)


def test_push_offline_fails_fast_with_a_clear_message(run_with_adapter, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(OfflineError, match="HF_HUB_OFFLINE"):
        sharing.push_run(run_with_adapter, "me/whisper-mr", token="hf_x")
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    started = time.monotonic()
    with pytest.raises(OfflineError, match="Could not reach the hub"):
        sharing.push_run(run_with_adapter, "me/whisper-mr", token="hf_x")
    assert time.monotonic() - started < 5


def test_push_reports_a_rejected_token(run_with_adapter, monkeypatch):
    seen = []

    class Hub(http.server.BaseHTTPRequestHandler):
        def _deny(self):
            seen.append((self.command, self.path, self.headers.get("authorization")))
            body = json.dumps({"error": "Invalid credentials"}).encode()
            self.send_response(401)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_PUT = _deny

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        import huggingface_hub.constants

        monkeypatch.setenv("HF_HUB_OFFLINE", "0")
        # huggingface_hub reads HF_HUB_OFFLINE once, at import (the suite sets it): lift it for this test alone.
        monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
        monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{server.server_address[1]}")
        with pytest.raises(StudioError, match="rejected the token") as err:
            sharing.push_run(run_with_adapter, "me/whisper-mr", token="hf_secret_value")
        assert "hf_secret_value" not in str(err.value)
        assert seen and seen[0][2] == "Bearer hf_secret_value"
    finally:
        server.shutdown()
