"""Credentials from Docker credential helpers and from Docker's own config.json.

The helper is the real docker-credential-pass (golang-docker-credential-helpers) over a password
store made for each test: a throwaway GnuPG home with a key without passphrase, and `pass init`.
The registry is Debian's docker-registry with htpasswd Basic auth, started by test_registry's
Registry over a storage that one small image was pushed to.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from test_pieces import base_tarball, pieces  # noqa: F401 (fixtures)
from test_registry import (HTPASSWD, Registry, TokenServer, check_pulled_image, expect_failure,  # noqa: F401 (fixtures)
                           needs_openssl, other_registry, pushed, registry, source, source_store, token_registry)

HELPER = shutil.which("docker-credential-pass")
needs_pass = pytest.mark.skipif(not HELPER or not shutil.which("pass") or not shutil.which("gpg"),
                                reason="needs docker-credential-pass, pass and gpg (scripts/install-deps.sh)")


@pytest.fixture(scope="module")
def locked(registry, base_tarball, tmp_path_factory) -> Registry:
    """A registry behind htpasswd (tester / s3cret) serving bb:1, pushed to `registry`'s storage."""
    d = tmp_path_factory.mktemp("credhelpers")
    src = source_store(d, base_tarball)
    registry.push(f"oci:{src.store}:src:1", "bb:1")
    (d / "htpasswd").write_text(HTPASSWD)
    (d / "locked").mkdir()
    reg = Registry(d / "locked", data=registry.data, auth=f"{{htpasswd: {{realm: pieces-test, path: {d / 'htpasswd'}}}}}")
    yield reg
    reg.stop()


class PassStore:
    """docker-credential-pass over a password store of its own (GNUPGHOME, PASSWORD_STORE_DIR)."""

    def __init__(self, base: Path):
        self.env = dict(os.environ, GNUPGHOME=str(base / "gnupg"), PASSWORD_STORE_DIR=str(base / "store"))
        (base / "gnupg").mkdir(mode=0o700)
        subprocess.run(["gpg", "--batch", "--passphrase", "", "--quick-gen-key", "pieces test <test@pieces.invalid>",
                        "future-default", "default", "never"], env=self.env, check=True, capture_output=True, timeout=60)
        keys = subprocess.run(["gpg", "--with-colons", "--list-keys"], env=self.env, check=True, capture_output=True,
                              text=True, timeout=60).stdout
        fpr = next(line.split(":")[9] for line in keys.splitlines() if line.startswith("fpr:"))
        subprocess.run(["pass", "init", fpr], env=self.env, check=True, capture_output=True, timeout=60)

    def helper(self, action: str, data: str) -> subprocess.CompletedProcess:
        return subprocess.run([HELPER, action], input=data, env=self.env, capture_output=True, text=True, timeout=60)

    def store(self, server: str, user: str, secret: str) -> None:
        res = self.helper("store", json.dumps({"ServerURL": server, "Username": user, "Secret": secret}))
        assert res.returncode == 0, res

    def get(self, server: str) -> tuple[str, str]:
        """(user, secret) the helper has for `server`; ("", "") when it has none (as 0.6 answers)."""
        res = self.helper("get", server)
        if res.returncode == 1 and "not found" in res.stdout:
            return "", ""
        assert res.returncode == 0, res
        answer = json.loads(res.stdout)
        return answer["Username"], answer["Secret"]

    def secrets(self) -> list[str]:
        """The password store's files: one per stored credential."""
        root = Path(self.env["PASSWORD_STORE_DIR"])
        return sorted(str(p.relative_to(root)) for p in root.rglob("*.gpg"))


@pytest.fixture
def password_store(monkeypatch):
    # A short path: gpg-agent's socket lives under GNUPGHOME, and socket paths are short.
    base = Path(tempfile.mkdtemp(prefix="pieces-pass-", dir="/tmp"))
    try:
        store = PassStore(base)
        monkeypatch.setenv("GNUPGHOME", store.env["GNUPGHOME"])
        monkeypatch.setenv("PASSWORD_STORE_DIR", store.env["PASSWORD_STORE_DIR"])
        yield store
    finally:
        # The gpg-agent that decrypting started for this GnuPG home, and nothing else.
        subprocess.run(["gpgconf", "--kill", "gpg-agent"], env=dict(os.environ, GNUPGHOME=str(base / "gnupg")),
                       capture_output=True, timeout=60)
        shutil.rmtree(base, ignore_errors=True)


def auth_file(workdir: Path, content: dict, monkeypatch) -> Path:
    path = workdir / "auth.json"
    path.write_text(json.dumps(content))
    monkeypatch.setenv("PIECES_AUTH_FILE", str(path))
    return path


@needs_pass
def test_pull_with_credentials_kept_by_pass(pieces, locked, password_store, workdir, monkeypatch):
    """credsStore: the helper is asked (it has nothing yet: credentials required); what
    `docker-credential-pass store` keeps then carries the pull."""
    auth_file(workdir, {"credsStore": "pass"}, monkeypatch)
    name = f"{locked.host}/bb:1"
    expect_failure(pieces, ["pull", name], "authentication required")
    password_store.store(locked.host, "tester", "s3cret")
    pieces.ok("pull", name)
    check_pulled_image(pieces, name)


@needs_pass
def test_login_stores_through_the_helper_and_logout_erases(pieces, locked, password_store, workdir, monkeypatch):
    """login with credsStore: the secret goes to pass, the file gets Docker's {} marker only;
    logout erases it from pass and the file."""
    auth = auth_file(workdir, {"credsStore": "pass", "auths": {"other.example": {"auth": "b3RoZXI6cHc="}}}, monkeypatch)
    out = pieces.ok("login", "-u", "tester", "--password-stdin", locked.host, input="s3cret\n")
    assert f"Login succeeded: {locked.host} (stored in docker-credential-pass)" in out, out
    assert password_store.get(locked.host) == ("tester", "s3cret")
    text = auth.read_text()
    assert "s3cret" not in text and "dGVzdGVyOnMzY3JldA" not in text, text
    assert json.loads(text) == {"credsStore": "pass", "auths": {"other.example": {"auth": "b3RoZXI6cHc="}, locked.host: {}}}
    assert auth.stat().st_mode & 0o777 == 0o600
    pieces.ok("pull", f"{locked.host}/bb:1")
    check_pulled_image(pieces, f"{locked.host}/bb:1")

    pieces.ok("logout", locked.host)
    assert password_store.get(locked.host) == ("", "")
    assert password_store.secrets() == []
    assert json.loads(auth.read_text())["auths"] == {"other.example": {"auth": "b3RoZXI6cHc="}}
    expect_failure(pieces, ["pull", f"{locked.host}/bb:1"], "authentication required")


@needs_pass
def test_cred_helpers_entry_beats_creds_store(pieces, locked, password_store, workdir, monkeypatch):
    """The registry's credHelpers entry is used, not credsStore (which names no installed helper),
    nor the inline entry (a wrong password)."""
    password_store.store(locked.host, "tester", "s3cret")
    auth_file(workdir, {"credsStore": "nosuch", "credHelpers": {f"http://{locked.host}/": "pass"},
                        "auths": {locked.host: {"auth": "dGVzdGVyOndyb25n"}}}, monkeypatch)
    pieces.ok("pull", f"{locked.host}/bb:1")
    check_pulled_image(pieces, f"{locked.host}/bb:1")
    # login writes through the same helper.
    password_store.store(locked.host, "tester", "stale")
    pieces.ok("login", "-u", "tester", "-p", "s3cret", locked.host)
    assert password_store.get(locked.host) == ("tester", "s3cret")


@needs_pass
def test_dockers_own_config_when_pieces_file_has_nothing(pieces, locked, password_store, workdir, monkeypatch):
    """Without PIECES_AUTH_FILE: pieces' auth.json (other registries only) first, then
    $DOCKER_CONFIG/config.json, inline or through its credsStore."""
    monkeypatch.delenv("PIECES_AUTH_FILE", raising=False)
    monkeypatch.setenv("HOME", str(workdir / "home"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(workdir / "xdg"))
    monkeypatch.setenv("DOCKER_CONFIG", str(workdir / "docker"))
    (workdir / "xdg" / "pieces").mkdir(parents=True)
    (workdir / "xdg" / "pieces" / "auth.json").write_text(json.dumps({"auths": {"other.example": {"auth": "b3RoZXI6cHc="}}}))
    (workdir / "docker").mkdir()
    docker_config = workdir / "docker" / "config.json"
    name = f"{locked.host}/bb:1"
    expect_failure(pieces, ["pull", name], "authentication required")

    docker_config.write_text(json.dumps({"auths": {locked.host: {"auth": "dGVzdGVyOnMzY3JldA=="}}}))
    pieces.ok("pull", name)
    check_pulled_image(pieces, name)

    password_store.store(locked.host, "tester", "s3cret")
    docker_config.write_text(json.dumps({"auths": {locked.host: {}}, "credsStore": "pass"}))
    pieces.ok("rmi", name)
    pieces.ok("pull", name)
    check_pulled_image(pieces, name)


@needs_pass
@needs_openssl
def test_identity_token_kept_by_pass(pieces, token_registry, password_store, workdir, monkeypatch):
    """A helper's answer for the user "<token>" is an identity token: exchanged at the token
    server by an OAuth2 refresh_token POST, never sent as a password."""
    tokens, reg = token_registry
    auth_file(workdir, {"credsStore": "pass"}, monkeypatch)
    password_store.store(reg.host, "<token>", TokenServer.REFRESH_TOKEN)
    name = f"{reg.host}/bb:1"
    pieces.ok("pull", name)
    check_pulled_image(pieces, name)
    assert [(r.get("method"), r.get("grant_type"), r.get("refresh_token")) for r in tokens.requests] == \
        [("POST", "refresh_token", TokenServer.REFRESH_TOKEN)], tokens.requests


def test_a_missing_helper_is_one_clear_error(pieces, locked, workdir, monkeypatch):
    """credsStore naming a helper that is not installed: pull and login fail in one line naming
    it and the file; the store and the auth file are unchanged."""
    auth = auth_file(workdir, {"credsStore": "nosuch", "auths": {locked.host: {"auth": "dGVzdGVyOnMzY3JldA=="}}}, monkeypatch)
    before = auth.read_bytes()
    err = expect_failure(pieces, ["pull", f"{locked.host}/bb:1"], "docker-credential-nosuch")
    assert f"credentials for {locked.host}: docker-credential-nosuch (credsStore in {auth}): not installed" in err, err
    res = pieces("login", "-u", "tester", "-p", "s3cret", locked.host)
    err = res.stderr.strip()
    assert res.returncode != 0 and "\n" not in err and f"docker-credential-nosuch (credsStore in {auth})" in err, res
    assert auth.read_bytes() == before
