"""The email procedure against a real SMTP server on loopback (aiosmtpd): plain, STARTTLS with
a login checked by the server, implicit TLS, and each way sending fails."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from smtp_util import SmtpServer, free_port, make_certificate, text_of
from testutil import run_all

import jobtree
from jobtree import JobState

FAIL = "procs_for_tests:FailProc"
NOOP = "procs_for_tests:NoopProc"
RESULT = "procs_for_tests:ResultProc"


@pytest.fixture
def smtp() -> Iterator[Callable[..., SmtpServer]]:
    """``smtp(tls=..., cert=..., users=...)`` starts a server; all are stopped at teardown."""
    servers: list[SmtpServer] = []

    def start(**kwargs: object) -> SmtpServer:
        server = SmtpServer(**kwargs)  # type: ignore[arg-type]
        servers.append(server.start())
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def cert(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """A self-signed certificate for localhost, trusted by this process (SSL_CERT_FILE)."""
    pair = make_certificate(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(pair[0]))
    return pair


def credentials_file(tmp_path: Path, user: str, password: str, mode: int = 0o600) -> str:
    path = tmp_path / "smtp-credentials"
    path.write_text(f"{user}\n{password}\n")
    path.chmod(mode)
    return str(path)


def send(queue: jobtree.JobQueue, **params: object) -> jobtree.JobHandle:
    with queue.createJob("email", **params) as root:
        pass
    run_all(queue)
    return root.handle


def test_plain_send(queue, smtp):
    server = smtp()
    job = send(
        queue,
        to=["ana@example.com", "Bo <bo@example.com>"],
        subject="frames are done",
        body="Shot 10 rendered.\nHave a look.",
        sender="farm@example.com",
        host="127.0.0.1",
        port=server.port,
    )
    assert job.state == JobState.DONE, job.error
    assert job.label == "e-mail to ana@example.com, Bo <bo@example.com>"
    assert job.progress == 100
    (mail,) = server.wait_for(1)
    assert mail["from"] == "farm@example.com"
    assert mail["to"] == ["ana@example.com", "bo@example.com"]
    msg = mail["message"]
    assert msg["Subject"] == "frames are done"
    assert msg["To"] == "ana@example.com, Bo <bo@example.com>"
    assert msg["Message-ID"]
    assert msg["Date"]
    assert text_of(msg) == "Shot 10 rendered.\nHave a look.\n"
    assert not mail["tls"]
    assert f"via 127.0.0.1:{server.port}" in job.stdout


def test_starttls_and_login_from_a_credentials_file(queue, smtp, cert, tmp_path):
    server = smtp(tls="starttls", cert=cert, users={"farm@example.com": "s3cret: with spaces "})
    creds = credentials_file(tmp_path, "farm@example.com", "s3cret: with spaces ")
    job = send(
        queue,
        to="ana@example.com",
        subject="hello",
        host="localhost",
        port=server.port,
        credentials=creds,
    )
    assert job.state == JobState.DONE, job.error
    (mail,) = server.wait_for(1)
    assert server.logins == [("farm@example.com", True)]
    assert mail["tls"], "the message must travel encrypted after STARTTLS"
    assert mail["from"] == "farm@example.com", "the login is the default sender"
    # tls was not given: credentials make it starttls
    assert queue.jobHandle(job.location).params.get("tls") is None


def test_implicit_tls(queue, smtp, cert, tmp_path):
    server = smtp(tls="ssl", cert=cert, users={"farm": "pw"})
    job = send(
        queue,
        to="ana@example.com",
        subject="over TLS",
        host="localhost",
        port=server.port,
        tls="ssl",
        credentials=credentials_file(tmp_path, "farm", "pw"),
        sender="farm@example.com",
    )
    assert job.state == JobState.DONE, job.error
    assert server.wait_for(1)[0]["message"]["Subject"] == "over TLS"
    assert server.logins == [("farm", True)]


def test_a_wrong_password_fails_naming_the_server_and_the_file(queue, smtp, cert, tmp_path):
    server = smtp(tls="starttls", cert=cert, users={"farm": "right"})
    creds = credentials_file(tmp_path, "farm", "wrong")
    job = send(
        queue,
        to="ana@example.com",
        subject="x",
        host="localhost",
        port=server.port,
        credentials=creds,
    )
    assert job.state == JobState.FAILED
    assert f"localhost:{server.port} refused the login of 'farm' (535" in job.error
    assert f"check the credentials file {creds}" in job.error
    assert server.received == []


def test_an_untrusted_certificate_fails_clearly(queue, smtp, tmp_path, monkeypatch):
    server = smtp(tls="starttls", cert=make_certificate(tmp_path))  # not in SSL_CERT_FILE
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    job = send(
        queue, to="ana@example.com", subject="x", host="localhost", port=server.port, tls="starttls"
    )
    assert job.state == JobState.FAILED
    assert (
        f"the certificate of the mail server localhost:{server.port} was not accepted" in job.error
    )
    assert "SSL_CERT_FILE" in job.error


def test_connection_refused(queue):
    port = free_port()
    job = send(queue, to="ana@example.com", subject="x", host="127.0.0.1", port=port)
    assert job.state == JobState.FAILED
    assert job.error.startswith(
        f"e-mail not sent: the mail server 127.0.0.1:{port} refused the connection"
    )
    assert "maxAttempts" in job.error


def test_a_refused_recipient_fails_the_job(queue, smtp):
    server = smtp()
    server.refuse.add("nobody@example.com")
    job = send(queue, to=["nobody@example.com"], subject="x", host="127.0.0.1", port=server.port)
    assert job.state == JobState.FAILED
    assert "refused every recipient: nobody@example.com (550 5.1.1 no such user here)" in job.error

    job = send(
        queue,
        to=["ana@example.com", "nobody@example.com"],
        subject="x",
        host="127.0.0.1",
        port=server.port,
    )
    assert job.state == JobState.FAILED
    assert "but these recipients were refused: nobody@example.com" in job.error
    assert server.wait_for(1)[0]["to"] == ["ana@example.com"]


def test_a_credentials_file_others_can_read_is_refused(queue, smtp, cert, tmp_path):
    server = smtp(tls="starttls", cert=cert, users={"farm": "pw"})
    creds = credentials_file(tmp_path, "farm", "pw", mode=0o644)
    job = send(
        queue,
        to="ana@example.com",
        subject="x",
        host="localhost",
        port=server.port,
        credentials=creds,
    )
    assert job.state == JobState.FAILED
    assert job.error == (
        f"the credentials file {creds} is accessible to group or others (mode 0644); the "
        f"password must stay private: run 'chmod 600 {creds}'"
    )
    assert server.logins == []

    missing = str(tmp_path / "nope")
    job = send(
        queue,
        to="a@example.com",
        subject="x",
        host="localhost",
        port=server.port,
        credentials=missing,
    )
    assert job.error.startswith(f"cannot read the credentials file {missing} on host ")

    bad = tmp_path / "one-line"
    bad.write_text("farm:pw\n")
    bad.chmod(0o600)
    job = send(
        queue,
        to="a@example.com",
        subject="x",
        host="localhost",
        port=server.port,
        credentials=str(bad),
    )
    assert "must hold two lines, the user name and then the password; it has 1 line(s)" in job.error


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"to": [], "subject": "x"}, "to must be an address or a non-empty list"),
        ({"to": "ana", "subject": "x"}, "'ana' is not an e-mail address"),
        ({"to": "a@example.com"}, "give a subject (or about="),
        (
            {"to": "a@example.com", "subject": "x", "tls": "yes"},
            "tls must be one of none, starttls, ssl",
        ),
        ({"to": "a@example.com", "subject": "x", "port": 0}, "port must be an int from 1 to 65535"),
        (
            {"to": "a@example.com", "subject": "x", "timeout": 0},
            "timeout must be a positive number",
        ),
        (
            {
                "to": "a@example.com",
                "subject": "x",
                "host": "mail.example.com",
                "tls": "none",
                "credentials": "/c",
            },
            "credentials would cross the network to mail.example.com unencrypted",
        ),
    ],
)
def test_bad_parameters_are_refused_at_submission(queue, params, message):
    with pytest.raises(
        jobtree.SubmissionError, match="the procedure rejected its parameters"
    ) as info:
        queue.createJob("email", **params)
    assert message in str(info.value)


def test_tls_and_port_defaults():
    from jobtree.procs.email import Email

    assert (Email(to="a@b.c", subject="x").tls, Email(to="a@b.c", subject="x").port) == ("none", 25)
    e = Email(to="a@b.c", subject="x", credentials="/c")
    assert (e.tls, e.port) == ("starttls", 587)
    e = Email(to="a@b.c", subject="x", port=465)
    assert (e.tls, e.port) == ("ssl", 465)
    e = Email(to="a@b.c", subject="x", tls="ssl")
    assert e.port == 465


def test_about_reports_a_finished_root_with_a_failed_job(queue, smtp):
    server = smtp()
    with queue.createJob(
        RESULT, label="shot010", value={"output": "/farm/out/shot010.mp4"}
    ) as root:
        root.createJob(NOOP, label="frames 1-3")
        root.createJob(FAIL, label="frames 4-6", message="Blender crashed on frame 5")
        root.createJob(NOOP, label="frames 7-9")
    run_all(queue)
    shot = root.handle
    assert shot.hasError(recursive=True)

    job = send(queue, to="ana@example.com", about=shot.location, host="127.0.0.1", port=server.port)
    assert job.state == JobState.DONE, job.error
    msg = server.wait_for(1)[0]["message"]
    assert msg["Subject"] == "[jobtree] shot010: failed (1 of 4 jobs)"
    body = text_of(msg)
    assert body.startswith("shot010: failed (1 of 4 jobs)\n")
    assert f"Root:       {shot.rootId} (procs_for_tests:ResultProc)" in body
    assert f"Directory:  {shot.location}" in body
    assert "State:      blocked" in body
    assert "Jobs:       4 in all: 2 done, 1 failed, 1 blocked" in body
    assert "Submitted:  " in body
    assert "Duration:   " in body
    assert "Failed jobs (1):\n  root.0001 'frames 4-6' (procs_for_tests:FailProc on " in body
    assert "      RuntimeError: Blender crashed on frame 5" in body
    assert f"run them again with:   jobtree retry {shot.location}\n" in body
    assert "Output:" not in body, "the root did not run: it has no result"


def test_about_reports_a_done_root_with_its_result(queue, smtp):
    server = smtp()
    with queue.createJob(
        RESULT, label="shot020", value={"output": "/farm/out/shot020.mp4", "frames": 12}
    ) as root:
        root.createJob(NOOP, label="frames 1-12")
    run_all(queue)
    job = send(
        queue,
        to="ana@example.com",
        about=root.handle.location,
        body="Your render is ready.",
        host="127.0.0.1",
        port=server.port,
    )
    assert job.state == JobState.DONE, job.error
    msg = server.wait_for(1)[0]["message"]
    assert msg["Subject"] == "[jobtree] shot020: done"
    body = text_of(msg)
    assert body.startswith("Your render is ready.\n\nshot020: done\n")
    assert "Jobs:       2 in all: 2 done" in body
    assert "Output:     /farm/out/shot020.mp4" in body
    assert 'Result:     {"output": "/farm/out/shot020.mp4", "frames": 12}' in body
    assert "Failed jobs" not in body


def test_about_a_directory_that_is_no_job_fails_clearly(queue, tmp_path):
    job = send(queue, to="ana@example.com", about=str(tmp_path), host="127.0.0.1", port=free_port())
    assert job.state == JobState.FAILED
    assert job.error.startswith(
        f"about={str(tmp_path)!r} is not a job directory of a jobtree queue"
    )
