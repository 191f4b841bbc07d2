"""E-mail for the failure automation: a Prefect notification block that sends through an SMTP server (Apprise's
`mailto://`, which Prefect ships), saved by `sipas deploy --email-to ADDR --smtp HOST:PORT` as `sipas-smtp-email/
sipas-failures`. The automation's action runs in the Prefect server, which finds this block type through the
package's `prefect.collections` entry point: the server needs the wheel installed (the unit in deploy/ runs it
from the wheel's environment)."""

from __future__ import annotations

import socket
from typing import Literal
from urllib.parse import quote, urlencode

from prefect.blocks.notifications import AbstractAppriseNotificationBlock
from pydantic import Field, SecretStr

from sipas_pipeline.errors import InputError

EMAIL_BLOCK = "sipas-failures"
SECURITY = ("insecure", "starttls", "ssl")  # Apprise's modes: plain SMTP (a relay on the host or the LAN), TLS
DEFAULT_SECURITY = {465: "ssl", 587: "starttls"}  # other ports: plain, as a local relay on 25 is


class SmtpEmail(AbstractAppriseNotificationBlock):
    """Send notifications by e-mail through an SMTP server (Apprise's mailto://)."""

    _block_type_name = "SIPAS SMTP e-mail"
    _block_type_slug = "sipas-smtp-email"

    to: list[str] = Field(..., description="Recipients.")
    host: str = Field(..., description="SMTP server.")
    port: int = Field(25, description="SMTP port.")
    sender: str = Field(..., description="From address.")
    security: Literal["insecure", "starttls", "ssl"] = Field("insecure", description="Transport security.")
    username: str | None = Field(None, description="SMTP login, when the server wants one.")
    password: SecretStr | None = Field(None, description="SMTP password.")

    def apprise_url(self) -> str:
        """The Apprise mailto:// URL of this block (the password in it: never logged)."""
        login = ""
        if self.username:
            secret = self.password.get_secret_value() if self.password else ""
            login = f"{quote(self.username, safe='')}:{quote(secret, safe='')}@"
        query = urlencode({"mode": self.security, "from": self.sender, "to": ",".join(self.to), "smtp": self.host})
        return f"mailto://{login}{self.host}:{self.port}?{query}"

    def block_initialization(self) -> None:
        self._start_apprise_client(SecretStr(self.apprise_url()))


def smtp_block(to: list[str], smtp: str, sender: str | None = None, security: str | None = None,
               username: str | None = None, password: str | None = None) -> SmtpEmail:
    """The e-mail block of `sipas deploy` (one clear line for a malformed address or server)."""
    host, _, port = smtp.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise InputError(f"--smtp {smtp}: give the SMTP server as HOST:PORT, e.g. smtp.example.gov.vn:587")
    bad = [a for a in to if "@" not in a.strip("@")]
    if not to or bad:
        raise InputError(f"--email-to {', '.join(bad) or '(none)'}: an e-mail address (name@domain) is needed")
    chosen = security or DEFAULT_SECURITY.get(int(port), "insecure")
    if chosen not in SECURITY:
        raise InputError(f"--smtp-security {chosen}: one of {', '.join(SECURITY)}")
    block = SmtpEmail(to=to, host=host, port=int(port), sender=sender or default_sender(), security=chosen,
                      username=username, password=SecretStr(password) if password else None)
    if not len(block._apprise_client):  # Apprise refused the URL (it logs why): an address it cannot read
        raise InputError(f"--email-to {', '.join(to)} --smtp-from {block.sender}: not addresses an e-mail can be sent "
                         "from and to (name@domain.tld)")
    return block


def default_sender() -> str:
    """sipas@<this host's domain name>, or sipas@localhost.localdomain when the host has no dotted name."""
    name = socket.getfqdn()
    return f"sipas@{name if '.' in name else 'localhost.localdomain'}"
