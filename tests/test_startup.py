"""Starting Sluice the way `make run` does, with a setting it cannot start with or a
busy port: one line that says what is wrong and where, and no traceback."""
from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

from .live_server import ROOT, free_port

SLUICE_VARIABLES = ("DATABASE_URL", "REDIS_URL", "LLM_MODEL", "SLUICE_", "OPENAI_",
                    "ANTHROPIC_", "OLLAMA_", "PORT")


def clean_env(tmp_path, **settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(SLUICE_VARIABLES)}
    return {**env, "DATABASE_URL": f"sqlite:///{tmp_path}/sluice.db", **settings}


def migrate(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`make run`'s first step."""
    return subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "db-upgrade"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)


def serve(env: dict[str, str], timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """`make run`'s second step, for a server that is expected to stop by itself."""
    return subprocess.run([sys.executable, "-m", "gunicorn", "--config", "gunicorn.conf.py",
                           "wsgi:app"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)


def assert_one_line(output: str, *expected: str) -> None:
    assert "Traceback" not in output, output
    lines = [line for line in output.splitlines() if line.startswith(("sluice:", "Error:"))]
    assert len(lines) == 1, output
    for text in expected:
        assert text in lines[0], output


def write_file(tmp_path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


CONFIG_ERRORS = {
    "model without provider": ({"LLM_MODEL": "gpt-4o"}, ["LLM_MODEL", "gpt-4o",
                                                         "provider/model"]),
    "unknown provider": ({"LLM_MODEL": "nowhere/x"}, ["LLM_MODEL", "nowhere"]),
    "provider without key": ({"LLM_MODEL": "anthropic/claude"}, ["LLM_MODEL",
                                                                 "ANTHROPIC_API_KEY"]),
    "bad fallback": ({"SLUICE_FALLBACK_MODELS": "demo/echo,oops"},
                     ["SLUICE_FALLBACK_MODELS", "oops"]),
    "not a number": ({"SLUICE_PING_SECONDS": "soon"}, ["SLUICE_PING_SECONDS", "soon"]),
    "not finite": ({"SLUICE_TOTAL_TIMEOUT": "nan"}, ["SLUICE_TOTAL_TIMEOUT"]),
    "bad switch": ({"SLUICE_AUTH": "maybe"}, ["SLUICE_AUTH"]),
    "bad origin": ({"SLUICE_ALLOWED_ORIGINS": "evil.example"}, ["SLUICE_ALLOWED_ORIGINS"]),
    "bad database URL": ({"DATABASE_URL": "not a url"}, ["DATABASE_URL"]),
    "unknown database": ({"DATABASE_URL": "nosuchdb://x/y"}, ["DATABASE_URL"]),
    "bad Redis URL": ({"REDIS_URL": "http://127.0.0.1:6379"}, ["REDIS_URL"]),
}


@pytest.mark.parametrize("case", CONFIG_ERRORS, ids=list(CONFIG_ERRORS))
def test_a_bad_setting_is_one_line_naming_it(tmp_path, case):
    settings, expected = CONFIG_ERRORS[case]
    result = migrate(clean_env(tmp_path, **settings))
    assert result.returncode != 0
    assert_one_line(result.stderr, "configuration error", *expected)


@pytest.mark.parametrize("text,expected", [
    (None, ["cannot read"]),
    ("[models.'openai/x'\n", ["not valid TOML"]),
    ('[models."demo/echo"]\ncolour = 1\n', ["colour"]),
    ('[models."demo/echo"]\nfallbacks = ["nowhere/x"]\n', ["nowhere/x", "fallbacks of demo/echo"]),
])
def test_a_bad_models_file_is_one_line_naming_it(tmp_path, text, expected):
    path = str(tmp_path / "missing.toml") if text is None else write_file(
        tmp_path, "models.toml", text)
    result = migrate(clean_env(tmp_path, SLUICE_MODELS_FILE=path))
    assert result.returncode != 0
    assert_one_line(result.stderr, "SLUICE_MODELS_FILE", path, *expected)


def test_an_unreachable_database_is_one_line(tmp_path):
    url = f"postgresql+psycopg://sluice@127.0.0.1:{free_port()}/sluice?connect_timeout=3"
    result = migrate(clean_env(tmp_path, DATABASE_URL=url))
    assert result.returncode != 0
    assert_one_line(result.stderr, "cannot migrate the database at DATABASE_URL")


def test_gunicorn_stops_on_a_bad_setting_instead_of_restarting_workers(tmp_path):
    env = clean_env(tmp_path, LLM_MODEL="gpt-4o", PORT=str(free_port()))
    result = serve(env)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert output.count("sluice: configuration error: LLM_MODEL") == 1, output
    assert "Traceback" not in output, output


def test_a_busy_port_says_so_and_what_to_do(tmp_path):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        result = serve(clean_env(tmp_path, PORT=str(port)), timeout=15)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert f"sluice: port {port} is in use — set PORT" in output, output
    assert "Connection in use" not in output and "Traceback" not in output, output


@pytest.mark.parametrize("port", ["http", "0", "70000", "８０"])
def test_a_bad_port_is_one_line(tmp_path, port):
    result = serve(clean_env(tmp_path, PORT=port), timeout=15)
    assert result.returncode != 0
    assert_one_line(result.stderr, "PORT must be a port number")
