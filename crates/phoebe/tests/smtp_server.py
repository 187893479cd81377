"""A mail server for the tests: aiosmtpd storing what it receives in a maildir, speaking plain
SMTP, STARTTLS (required) or implicit TLS, and optionally requiring a login (over TLS only).

usage: smtp_server.py PORT MAILDIR MODE [CERT KEY] [USER:PASSWORD]
MODE: plain, starttls or smtps. Runs until killed.
"""

import ssl
import sys
import time

from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Mailbox
from aiosmtpd.smtp import AuthResult, LoginPassword


def main():
    port, maildir, mode = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    rest = sys.argv[4:]
    context = None
    if mode != "plain":
        cert, key, rest = rest[0], rest[1], rest[2:]
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
    login = rest[0].encode().split(b":", 1) if rest else None

    def authenticate(server, session, envelope, mechanism, auth_data):
        ok = (
            login is not None
            and isinstance(auth_data, LoginPassword)
            and [auth_data.login, auth_data.password] == login
        )
        # handled=False: aiosmtpd answers a failure with 535 itself.
        return AuthResult(success=ok, handled=False)

    kwargs = {}
    if login is not None:
        # Under implicit TLS aiosmtpd cannot tell the session is encrypted (it only tracks
        # STARTTLS), and every byte is anyway.
        kwargs.update(
            authenticator=authenticate, auth_required=True, auth_require_tls=mode != "smtps"
        )
    if mode == "starttls":
        kwargs.update(tls_context=context, require_starttls=True)
    controller = Controller(
        Mailbox(maildir),
        hostname="127.0.0.1",
        port=port,
        ssl_context=context if mode == "smtps" else None,
        server_hostname="127.0.0.1",
        **kwargs,
    )
    controller.start()
    print("ready", flush=True)
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()
