"""A real SMTP server on loopback for the e-mail tests (aiosmtpd), and a certificate for its TLS.

Used by test_procs_email.py and test_animation.py. Every server is stopped by the fixture that
started it (the leak checker fails a test that leaves its thread behind).
"""

from __future__ import annotations

import socket
import ssl
import subprocess
import time
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from testutil import require_tool


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (just now)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_certificate(directory: Path) -> tuple[Path, Path]:
    """(cert, key) of a self-signed certificate for localhost and 127.0.0.1, made by openssl.
    The certificate is its own CA: point SSL_CERT_FILE at it to trust it."""
    openssl = require_tool("openssl", "openssl")
    cert, key = directory / "smtp-cert.pem", directory / "smtp-key.pem"
    subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
        timeout=30,
    )
    return cert, key


class _Collect:
    def __init__(self, server: SmtpServer) -> None:
        self.server = server

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        if address in self.server.refuse:
            return "550 5.1.1 no such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.server.received.append(
            {
                "from": envelope.mail_from,
                "to": list(envelope.rcpt_tos),
                "message": message_from_bytes(envelope.content),
                "login": getattr(session, "auth_data", None),
                "tls": session.ssl is not None,
            }
        )
        return "250 OK"


class SmtpServer:
    """aiosmtpd on 127.0.0.1 in a thread. *tls*: "none", "starttls" or "ssl" (needs *cert*);
    *users*: {user: password} that must log in (only over TLS, as real servers demand)."""

    def __init__(
        self,
        tls: str = "none",
        cert: tuple[Path, Path] | None = None,
        users: dict[str, str] | None = None,
    ) -> None:
        self.port = free_port()
        self.received: list[dict[str, Any]] = []
        self.refuse: set[str] = set()
        self.logins: list[tuple[str, bool]] = []
        kwargs: dict[str, Any] = {}
        if tls != "none":
            assert cert is not None
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(str(cert[0]), str(cert[1]))
            kwargs["ssl_context" if tls == "ssl" else "tls_context"] = context
        if users is not None:
            self.users = users
            kwargs["authenticator"] = self._authenticate
            if tls == "ssl":  # aiosmtpd sees TLS only when it came by STARTTLS
                kwargs["auth_require_tls"] = False
            else:
                kwargs["auth_required"] = True
        self.controller = Controller(
            _Collect(self),
            hostname="127.0.0.1",
            port=self.port,
            server_hostname="localhost",
            **kwargs,
        )

    def _authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        ok = (
            isinstance(auth_data, LoginPassword)
            and self.users.get(auth_data.login.decode()) == auth_data.password.decode()
        )
        self.logins.append((auth_data.login.decode(), ok))
        return AuthResult(success=ok, handled=False)

    def start(self) -> SmtpServer:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()

    def wait_for(self, n: int, timeout: float = 30.0) -> list[dict[str, Any]]:
        """The first *n* messages received; fail after *timeout* seconds."""
        deadline = time.monotonic() + timeout
        while len(self.received) < n:
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(self.received)} of {n} e-mails arrived in {timeout} s")
            time.sleep(0.02)
        return self.received[:n]


def text_of(message: Message) -> str:
    """The text body of a received message, with the wire's CRLF line ends made LF."""
    payload = message.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return payload.decode(message.get_content_charset() or "utf-8").replace("\r\n", "\n")
