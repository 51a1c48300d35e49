"""The ``email`` procedure: send a message by SMTP, optionally reporting on a root job.

With ``about=<a root's directory>`` the message reports that root (label, state, counts of jobs
by state, the failed jobs with their errors, times, the root's result); ``submitAnimation``
adds it as the root's onDone/onFailed hook this way.
"""

from __future__ import annotations

import getpass
import json
import os
import smtplib
import socket
import ssl
import stat
import time
from email.message import EmailMessage
from email.utils import formatdate, getaddresses, make_msgid
from typing import Any, Final

from jobtree import JobHandle, JobQueue, JobState, JobTreeError
from jobtree.proc import JobProc

TLS_MODES: Final = ("none", "starttls", "ssl")
DEFAULT_PORTS: Final = {"none": 25, "starttls": 587, "ssl": 465}
LOOPBACK: Final = ("localhost", "127.0.0.1", "::1")
MAX_FAILED_LISTED: Final = 10
MAX_ERROR_CHARS: Final = 1500


class _SendError(Exception):
    """Sending failed; the message says why and what to do."""


def _addresses(to: Any) -> list[str]:
    items = [to] if isinstance(to, str) else to
    if not isinstance(items, list) or not items or not all(isinstance(a, str) for a in items):
        raise TypeError(f"email: to must be an address or a non-empty list of them, not {to!r}")
    for item in items:
        parsed = getaddresses([item])
        if len(parsed) != 1 or "@" not in parsed[0][1]:
            raise ValueError(
                f"email: {item!r} is not an e-mail address; write one address per list entry, "
                "like 'ana@example.com' or 'Ana <ana@example.com>'"
            )
    return list(items)


def readCredentials(path: str) -> tuple[str, str]:
    """(user, password) from a credentials file: the user name on the first line, the password
    on the second (exactly, without the line ending). The file must be private to its owner
    (no permission bits for group or others), as ssh demands of a private key."""
    try:
        st = os.stat(path)
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as exc:
        raise _SendError(
            f"cannot read the credentials file {path} on host {socket.gethostname()}: "
            f"{exc.strerror or exc}; create it there (user on line 1, password on line 2, "
            "chmod 600)"
        ) from None
    if stat.S_IMODE(st.st_mode) & 0o077:
        raise _SendError(
            f"the credentials file {path} is accessible to group or others (mode "
            f"{stat.S_IMODE(st.st_mode):04o}); the password must stay private: run "
            f"'chmod 600 {path}'"
        )
    lines = text.splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    if len(lines) != 2 or not lines[0].strip():
        raise _SendError(
            f"the credentials file {path} must hold two lines, the user name and then the "
            f"password; it has {len(lines)} line(s)"
        )
    return lines[0].strip(), lines[1]


# -- the report on a root ------------------------------------------------------------------------


def _openJob(directory: str) -> JobHandle:
    """The JobHandle of a job directory, finding its queue among the directory's parents."""
    location = os.path.abspath(directory)
    parent = os.path.dirname(location)
    while True:
        try:
            return JobQueue(parent).jobHandle(location)
        except JobTreeError:
            pass
        if os.path.dirname(parent) == parent:
            raise _SendError(
                f"about={directory!r} is not a job directory of a jobtree queue (deleted, "
                "archived, or a wrong path?); pass the directory of a root, "
                "<queue>/roots/<rootId>"
            )
        parent = os.path.dirname(parent)


def _when(t: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(t)) if t is not None else "-"


def _duration(seconds: float) -> str:
    s = round(seconds)
    if seconds < 60:
        return f"{seconds:.1f} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


def _indent(text: str, prefix: str) -> str:
    if len(text) > MAX_ERROR_CHARS:
        text = text[: MAX_ERROR_CHARS - 1] + "…"
    return "\n".join(prefix + line for line in text.splitlines())


def _walk(job: JobHandle) -> list[JobHandle]:
    out, stack = [], [job]
    while stack:
        h = stack.pop()
        out.append(h)
        stack.extend(reversed(h.listSubJobs()))
    return out


def describeRoot(directory: str) -> tuple[str, str, str]:
    """(name, outcome, report) of the job tree in *directory*: its label (or id), a word or two
    for its outcome (``done``, ``failed``, ``cancelled``, ``running``...), and a plain-text report."""
    root = _openJob(directory)
    name = root.label or root.rootId
    counts = {s: n for s, n in root.stateCounts().items() if n}
    total = sum(counts.values())
    state = root.state
    if state is JobState.DONE:
        outcome = "done"
    elif counts.get(JobState.FAILED):
        n = counts[JobState.FAILED]
        outcome = f"failed ({n} of {total} job{'s' if total != 1 else ''})"
    elif counts.get(JobState.CANCELLED):
        outcome = "cancelled"
    else:
        outcome = str(state)

    jobs = _walk(root)
    ends = [t for t in (j.endTime for j in jobs) if t is not None]
    submitted = root.submitTime
    finished = max(ends) if ends else None
    lines = [
        f"{name}: {outcome}",
        "",
        f"  Root:       {root.rootId} ({root.jobType})",
        f"  Directory:  {root.location}",
        f"  State:      {state}",
        "  Jobs:       " + f"{total} in all: " + ", ".join(f"{n} {s}" for s, n in counts.items()),
        f"  Submitted:  {_when(submitted)}",
    ]
    if finished is not None:
        lines.append(
            f"  {'Finished:' if state is JobState.DONE else 'Last end:'}   {_when(finished)}"
        )
        if submitted is not None:
            lines.append(f"  Duration:   {_duration(finished - submitted)} (from submission)")
    try:
        result = root.result
    except JobTreeError as exc:
        result, lines = None, [*lines, f"  Result:     unreadable ({exc})"]
    if isinstance(result, dict) and isinstance(result.get("output"), str):
        lines.append(f"  Output:     {result['output']}")
    if result is not None:
        text = json.dumps(result, ensure_ascii=False)
        lines.append(f"  Result:     {text if len(text) <= 500 else text[:499] + '…'}")

    failed = [j for j in jobs if j.state is JobState.FAILED]
    if failed:
        lines += ["", f"Failed jobs ({len(failed)}):"]
        for j in failed[:MAX_FAILED_LISTED]:
            where = f" on {j.host}" if j.host else ""
            label = f" {j.label!r}" if j.label else ""
            lines.append(f"  {j.path}{label} ({j.jobType}{where}, attempt {j.attempts}):")
            lines.append(_indent(j.error or "(no error message)", "      "))
        if len(failed) > MAX_FAILED_LISTED:
            lines.append(f"  ... and {len(failed) - MAX_FAILED_LISTED} more")
        lines += [
            "",
            f"See them with:   jobtree tree {root.location}",
            f"Once fixed, run them again with:   jobtree retry {root.location}",
        ]
    return name, outcome, "\n".join(lines) + "\n"


# -- the procedure --------------------------------------------------------------------------------


class Email(JobProc):
    """Send an e-mail by SMTP (``email``).

    ``tls`` defaults to ``"ssl"`` on port 465, else ``"starttls"`` when ``credentials`` are
    given, else ``"none"``; ``port`` defaults to 465, 587 or 25 accordingly. ``credentials`` is
    the path of a file on the worker hosts: user name on line 1, password on line 2, mode 600.
    Certificates are checked against the system's CAs (``SSL_CERT_FILE`` on the worker adds
    another). Every SMTP error fails the job with a message naming the server; give the job
    ``maxAttempts`` > 1 to retry temporary ones.
    """

    def __init__(
        self,
        *,
        to: str | list[str],
        subject: str | None = None,
        body: str = "",
        sender: str | None = None,
        host: str = "localhost",
        port: int | None = None,
        tls: str | None = None,
        credentials: str | None = None,
        timeout: float = 30,
        about: str | None = None,
        label: str | None = None,
    ) -> None:
        super().__init__(label=label)
        self.to = _addresses(to)
        for name, value in (("subject", subject), ("sender", sender), ("about", about)):
            if value is not None and not isinstance(value, str):
                raise TypeError(f"email: {name} must be a str, not {value!r}")
        if subject is None and about is None:
            raise ValueError("email: give a subject (or about=<a root's directory> for a report)")
        if not isinstance(body, str):
            raise TypeError(f"email: body must be a str, not {body!r}")
        if sender is not None:
            _addresses(sender)
        if not isinstance(host, str) or not host:
            raise TypeError(f"email: host must be a host name or address, not {host!r}")
        if port is not None and (
            isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536
        ):
            raise ValueError(f"email: port must be an int from 1 to 65535, not {port!r}")
        if tls is not None and tls not in TLS_MODES:
            raise ValueError(f"email: tls must be one of {', '.join(TLS_MODES)}, not {tls!r}")
        if credentials is not None and (not isinstance(credentials, str) or not credentials):
            raise TypeError(
                f"email: credentials must be the path of a file (str), not {credentials!r}"
            )
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
            raise ValueError(
                f"email: timeout must be a positive number of seconds, not {timeout!r}"
            )
        if tls is None:
            tls = "ssl" if port == 465 else "starttls" if credentials else "none"
        if tls == "none" and credentials is not None and host not in LOOPBACK:
            raise ValueError(
                f"email: credentials would cross the network to {host} unencrypted; use "
                "tls='starttls' (port 587) or tls='ssl' (port 465)"
            )
        self.subject, self.body, self.sender = subject, body, sender
        self.host, self.tls = host, tls
        self.port = port if port is not None else DEFAULT_PORTS[tls]
        self.credentials, self.timeout, self.about = credentials, float(timeout), about
        if self.label is None:
            self.label = f"e-mail to {', '.join(self.to)}"

    @property
    def server(self) -> str:
        return f"{self.host}:{self.port}"

    def run(self) -> None:
        try:
            self.setStatusLine("composing")
            message = self.compose()
            credentials = readCredentials(self.credentials) if self.credentials else None
            self.setStatusLine(f"sending to {', '.join(self.to)} via {self.server}")
            self.send(message, credentials)
        except _SendError as exc:
            self.setError(str(exc))
            return
        print(f"sent {message['Subject']!r} to {', '.join(self.to)} via {self.server}", flush=True)
        self.setProgress(100)
        self.setStatusLine(f"sent to {', '.join(self.to)}")

    def compose(self) -> EmailMessage:
        """The message: *body*, then the report on *about* (if given)."""
        subject, text = self.subject, self.body
        if self.about is not None:
            name, outcome, report = describeRoot(self.about)
            subject = subject if subject is not None else f"[jobtree] {name}: {outcome}"
            text = f"{text.rstrip()}\n\n{report}" if text.strip() else report
        sender = self.sender or self._defaultSender()
        msg = EmailMessage()
        msg["From"] = sender
        msg["To"] = ", ".join(self.to)
        msg["Subject"] = subject or ""
        msg["Date"] = formatdate(localtime=True)
        msg["Message-ID"] = make_msgid(domain=socket.getfqdn() or None)
        msg["X-Mailer"] = "jobtree"
        msg.set_content(text or "\n")
        return msg

    def _defaultSender(self) -> str:
        if self.credentials:
            try:
                user = readCredentials(self.credentials)[0]
            except _SendError:
                user = ""
            if "@" in user:
                return user
        return f"{getpass.getuser()}@{socket.getfqdn()}"

    def send(self, message: EmailMessage, credentials: tuple[str, str] | None) -> None:
        """Deliver *message*; _SendError naming the server and what to do on any failure."""
        context = ssl.create_default_context()
        where = f"the mail server {self.server}"
        try:
            smtp: smtplib.SMTP
            if self.tls == "ssl":
                smtp = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout, context=context)
            else:
                smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
            with smtp:
                smtp.ehlo()
                if self.tls == "starttls":
                    if not smtp.has_extn("starttls"):
                        raise _SendError(
                            f"{where} does not offer STARTTLS; use tls='ssl' (port 465) if it "
                            "speaks TLS from the start, or tls='none' for a trusted local relay"
                        )
                    smtp.starttls(context=context)
                    smtp.ehlo()
                if credentials is not None:
                    self._login(smtp, credentials, where)
                refused = smtp.send_message(message)
        except _SendError:
            raise
        except ConnectionRefusedError:
            raise _SendError(
                f"e-mail not sent: {where} refused the connection; is a mail server running "
                f"there, and is the port right (25 plain, 587 STARTTLS, 465 SSL)? "
                f"{_TEMPORARY}"
            ) from None
        except socket.gaierror as exc:
            raise _SendError(
                f"e-mail not sent: cannot resolve the mail server's name {self.host!r} "
                f"({exc.strerror}); fix the job's 'host'"
            ) from None
        except ssl.SSLCertVerificationError as exc:
            raise _SendError(
                f"e-mail not sent: the certificate of {where} was not accepted "
                f"({exc.verify_message}); if it is signed by a private CA, point SSL_CERT_FILE on "
                "the worker hosts at that CA's certificate"
            ) from None
        except ssl.SSLError as exc:
            raise _SendError(
                f"e-mail not sent: the TLS handshake with {where} failed ({exc.reason or exc}); "
                f"is tls={self.tls!r} right for port {self.port}? (465: 'ssl', 587: 'starttls')"
            ) from None
        except TimeoutError:
            raise _SendError(
                f"e-mail not sent: {where} did not answer within {self.timeout:g} s. {_TEMPORARY}"
            ) from None
        except smtplib.SMTPRecipientsRefused as exc:
            raise _SendError(
                f"e-mail not sent: {where} refused every recipient: {_refusals(exc.recipients)}"
            ) from None
        except smtplib.SMTPSenderRefused as exc:
            raise _SendError(
                f"e-mail not sent: {where} refused the sender {exc.sender!r} "
                f"({_reply(exc.smtp_code, exc.smtp_error)}); set the job's 'sender' to an "
                "address the server accepts"
            ) from None
        except smtplib.SMTPResponseException as exc:
            temporary = 400 <= exc.smtp_code < 500
            raise _SendError(
                f"e-mail not sent: {where} answered {_reply(exc.smtp_code, exc.smtp_error)}"
                + (f". {_TEMPORARY}" if temporary else "")
            ) from None
        except smtplib.SMTPServerDisconnected as exc:
            raise _SendError(
                f"e-mail not sent: {where} closed the connection ({exc}). {_TEMPORARY}"
            ) from None
        except (smtplib.SMTPException, OSError) as exc:
            raise _SendError(
                f"e-mail not sent via {where}: {type(exc).__name__}: {exc}. {_TEMPORARY}"
            ) from None
        if refused:
            raise _SendError(
                f"e-mail sent via {where}, but these recipients were refused: {_refusals(refused)}"
            )

    def _login(self, smtp: smtplib.SMTP, credentials: tuple[str, str], where: str) -> None:
        user, password = credentials
        if not smtp.has_extn("auth"):
            how = "" if self.tls != "none" else "; servers often offer it only over TLS"
            raise _SendError(
                f"e-mail not sent: {where} does not offer authentication (AUTH){how}; drop "
                "'credentials' or use tls='starttls' / 'ssl'"
            )
        try:
            smtp.login(user, password)
        except smtplib.SMTPAuthenticationError as exc:
            raise _SendError(
                f"e-mail not sent: {where} refused the login of {user!r} "
                f"({_reply(exc.smtp_code, exc.smtp_error)}); check the credentials file "
                f"{self.credentials}"
            ) from None


_TEMPORARY: Final = (
    "This may be temporary: give the job jobOptions maxAttempts > 1 (and a retryDelay) to retry it."
)


def _reply(code: int, text: bytes | str) -> str:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return f"{code} {' '.join(text.split())}"


def _refusals(recipients: dict[str, tuple[int, bytes]]) -> str:
    return "; ".join(f"{addr} ({_reply(code, text)})" for addr, (code, text) in recipients.items())
