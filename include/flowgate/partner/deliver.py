"""Put a file on the partner SFTP server as the partner would: the simulator side of flow 5.

A partner uploads to ``<final name>.part`` in its folder and renames once the upload is
complete, so a poller never sees half a file under the real name. Delivering a name that
is already there fails unless ``replace=True``: a redelivery under the same name is a real
case the ingest must notice, so it only happens on purpose.

The connection is ``partner_sftp`` (key file and pinned host key in its extra, as
devstack/env.py writes it). The host key is never accepted blindly: without a pinned key
in the connection, ``~/.ssh/known_hosts`` must hold it (the Docker setup).
"""

from __future__ import annotations

import asyncio
import json
import os
import posixpath
from dataclasses import dataclass
from pathlib import Path

import asyncssh

from flowgate.partner.contract import Contract, IsoWeek

SFTP_CONN_ID = "partner_sftp"
CONNECT_TIMEOUT_S = 20


class DeliveryError(RuntimeError):
    """The file could not be delivered (connection, host key, or what the server said)."""


class AlreadyDelivered(DeliveryError):
    """The final name exists on the server and ``replace`` was not asked for."""


@dataclass(frozen=True)
class SftpTarget:
    """Where and how to log in: what the ``partner_sftp`` connection holds."""

    host: str
    port: int
    login: str
    key_file: str
    host_key: str | None  # "ssh-ed25519 AAAA...": pinned; None: ~/.ssh/known_hosts must know it

    @classmethod
    def from_connection(cls, conn) -> SftpTarget:
        """From an Airflow Connection or its JSON form (a dict, as in AIRFLOW_CONN_*)."""
        if isinstance(conn, dict):
            host, port, login, extra = conn.get("host"), conn.get("port"), conn.get("login"), conn.get("extra") or {}
            if isinstance(extra, str):
                extra = json.loads(extra)
        else:
            host, port, login, extra = conn.host, conn.port, conn.login, conn.extra_dejson
        if str(extra.get("no_host_key_check", False)).lower() == "true":
            raise DeliveryError("the SFTP connection disables host key checking: refusing to deliver")
        if not host or not login or not extra.get("key_file"):
            raise DeliveryError("the SFTP connection needs host, login and extra.key_file")
        return cls(host=host, port=int(port or 22), login=login, key_file=extra["key_file"],
                   host_key=extra.get("host_key") or None)

    @classmethod
    def from_conn_id(cls, conn_id: str = SFTP_CONN_ID) -> SftpTarget:
        """From ``AIRFLOW_CONN_<ID>`` (JSON) when set, else Airflow's connection lookup."""
        value = os.environ.get(f"AIRFLOW_CONN_{conn_id.upper()}", "")
        if value.lstrip().startswith("{"):
            return cls.from_connection(json.loads(value))
        from airflow.sdk import BaseHook

        return cls.from_connection(BaseHook.get_connection(conn_id))

    @classmethod
    def from_stack(cls, cfg) -> SftpTarget:
        """The local stack's partner_sftp connection, as devstack/env.py defines it."""
        from flowgate.devstack.env import connections

        return cls.from_connection(connections(cfg)[SFTP_CONN_ID])

    def known_hosts(self):
        if self.host_key:
            return ([asyncssh.import_public_key(self.host_key)], [], [])
        default = Path("~/.ssh/known_hosts").expanduser()
        if not default.is_file():
            raise DeliveryError("no pinned host key: the connection has no extra.host_key and "
                                "~/.ssh/known_hosts does not exist")
        return str(default)


@dataclass(frozen=True)
class Delivered:
    remote_path: str
    size: int
    replaced: bool  # a file of that name was there and was overwritten


def _target(where) -> SftpTarget:
    if isinstance(where, SftpTarget):
        return where
    if isinstance(where, str):
        return SftpTarget.from_conn_id(where)
    if hasattr(where, "secrets_dir"):  # a devstack StackConfig
        return SftpTarget.from_stack(where)
    return SftpTarget.from_connection(where)


def deliver(where, contract: Contract, week: IsoWeek, local_file: Path, replace: bool = False) -> Delivered:
    """Upload ``local_file`` as the contract's file for ``week``: to ``<remote_path>.part``
    (its folder created if needed), then renamed to the final name.

    ``where``: a StackConfig (the local stack), a connection id, an Airflow Connection or
    its JSON dict, or an :class:`SftpTarget`. Raises :class:`AlreadyDelivered` when the name
    exists and ``replace`` is false, :class:`DeliveryError` for anything else that fails.
    """
    local_file = Path(local_file)
    if not local_file.is_file():
        raise FileNotFoundError(f"nothing to deliver: {local_file} does not exist")
    target = _target(where)
    try:
        return asyncio.run(_deliver(target, contract.remote_path(week), local_file, replace))
    except (OSError, asyncssh.Error) as err:
        if isinstance(err, DeliveryError):
            raise
        raise DeliveryError(f"delivery of {contract.file_name(week)} to {target.host}:{target.port} failed: "
                            f"{err}") from err


def _connect(target: SftpTarget):
    """Key authentication with the connection's key only, against the pinned host key."""
    return asyncssh.connect(
        target.host, target.port, username=target.login, client_keys=[target.key_file], agent_path=None,
        preferred_auth="publickey", known_hosts=target.known_hosts(), connect_timeout=CONNECT_TIMEOUT_S,
    )


async def _deliver(target: SftpTarget, remote_path: str, local_file: Path, replace: bool) -> Delivered:
    part = f"{remote_path}.part"
    async with _connect(target) as conn, conn.start_sftp_client() as sftp:
        await sftp.makedirs(posixpath.dirname(remote_path), exist_ok=True)
        existed = await sftp.exists(remote_path)
        if existed and not replace:
            raise AlreadyDelivered(f"{remote_path} is already on the server: deliver with replace "
                                   "(--replace) to redeliver under the same name")
        try:
            await sftp.put(str(local_file), part)
            size = (await sftp.stat(part)).size
            if size != local_file.stat().st_size:
                raise DeliveryError(f"{part}: {size} bytes arrived of {local_file.stat().st_size}")
            if replace:
                await sftp.posix_rename(part, remote_path)  # atomic, over the old file
            else:
                try:
                    await sftp.rename(part, remote_path)  # SFTP rename never overwrites
                except asyncssh.SFTPFileAlreadyExists as err:  # delivered meanwhile by someone else
                    raise AlreadyDelivered(f"{remote_path} appeared on the server during the upload") from err
        except BaseException:
            try:
                await sftp.remove(part)
            except (OSError, asyncssh.Error):
                pass
            raise
    return Delivered(remote_path=remote_path, size=size, replaced=existed)


def read_back(where, remote_path: str, local_file: Path) -> Path:
    """Download ``remote_path`` (what the test and an operator use to check a delivery)."""
    target = _target(where)

    async def _get() -> None:
        async with _connect(target) as conn, conn.start_sftp_client() as sftp:
            await sftp.get(remote_path, str(local_file))

    asyncio.run(_get())
    return Path(local_file)


def listing(where, folder: str) -> list[str]:
    """The names in a folder on the server."""
    target = _target(where)

    async def _ls() -> list[str]:
        async with _connect(target) as conn, conn.start_sftp_client() as sftp:
            return sorted(name for name in await sftp.listdir(folder) if name not in (".", ".."))

    return asyncio.run(_ls())


def remove(where, remote_path: str) -> bool:
    """Delete a delivered file (tests clean up after themselves); False if it was not there."""
    target = _target(where)

    async def _rm() -> bool:
        async with _connect(target) as conn, conn.start_sftp_client() as sftp:
            if not await sftp.exists(remote_path):
                return False
            await sftp.remove(remote_path)
            return True

    return asyncio.run(_rm())
