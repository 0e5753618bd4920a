"""The partner SFTP server of the local stack: asyncssh, key authentication only.

Each account sees only its own folder (chroot). Run as
``python -m flowgate.devstack.sftp_server --port P --root DIR --host-key F --account NAME=PUBKEY``.
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

import asyncssh


class _KeyOnlyServer(asyncssh.SSHServer):
    def __init__(self, authorized: dict[str, asyncssh.SSHAuthorizedKeys]):
        self._authorized = authorized

    def begin_auth(self, username: str) -> bool:
        return True  # every account must authenticate, known or not

    def password_auth_supported(self) -> bool:
        return False

    def public_key_auth_supported(self) -> bool:
        return True

    def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        keys = self._authorized.get(username)
        # validate() returns the key's options ({} when it has none), or None if unknown.
        return keys is not None and keys.validate(key, "", "") is not None


def _sftp_factory(root: Path):
    def make(chan: asyncssh.SSHServerChannel) -> asyncssh.SFTPServer:
        home = root / chan.get_extra_info("username")
        home.mkdir(parents=True, exist_ok=True)
        return asyncssh.SFTPServer(chan, chroot=str(home).encode())

    return make


async def serve(host: str, port: int, root: Path, host_key: Path, accounts: dict[str, Path]) -> None:
    authorized = {name: asyncssh.import_authorized_keys(pub.read_text()) for name, pub in accounts.items()}
    await asyncssh.listen(
        host, port,
        server_host_keys=[str(host_key)],
        server_factory=lambda: _KeyOnlyServer(authorized),
        sftp_factory=_sftp_factory(root),
        allow_scp=False,
    )
    await asyncio.Event().wait()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--root", type=Path, required=True)
    parser.add_argument("--host-key", type=Path, required=True)
    parser.add_argument("--account", action="append", default=[], help="NAME=PATH_TO_PUBLIC_KEY")
    args = parser.parse_args(argv)
    accounts = dict((name, Path(pub)) for name, pub in (a.split("=", 1) for a in args.account))
    asyncio.run(serve(args.host, args.port, args.root, args.host_key, accounts))


if __name__ == "__main__":
    main()
