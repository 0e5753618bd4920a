#!/bin/sh
# One-shot `sftp-keys` service of docker-compose.yaml (runs as root in the atmoz/sftp
# image, which has ssh-keygen). Generates the partner SFTP keys once into named volumes,
# never into the repo, the same pair the no-Docker stack makes (devstack/services.py):
#   /keys/server  -> sftp server   (/etc/ssh/flowgate): host key, partner's authorized key
#   /keys/client  -> Airflow       (/home/airflow/.ssh): partner's private key, known_hosts
#   /data         -> sftp server   (/home/partner/files): the partner's writable folder
# Idempotent: existing keys are kept, so the pinned host key survives restarts.
set -eu

server=${KEYS_DIR:-/keys}/server
client=${KEYS_DIR:-/keys}/client
data=${DATA_DIR:-/data}
airflow_uid=${AIRFLOW_UID:-50000}
partner_uid=${PARTNER_UID:-1001}
partner_gid=${PARTNER_GID:-100}

mkdir -p "$server/authorized_keys" "$client"
[ -f "$server/ssh_host_ed25519_key" ] || ssh-keygen -q -t ed25519 -N '' -C flowgate-sftp -f "$server/ssh_host_ed25519_key"
[ -f "$client/partner_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -C partner -f "$client/partner_ed25519"
cp "$client/partner_ed25519.pub" "$server/authorized_keys/partner"

# Pin the host key: with a known_hosts entry and no `no_host_key_check`, Airflow's SFTP
# hook refuses any other key (paramiko's RejectPolicy; asyncssh likewise).
printf 'sftp %s\n' "$(cut -d' ' -f1,2 "$server/ssh_host_ed25519_key.pub")" > "$client/known_hosts"

# sshd's StrictModes: key files and their folders owned by root, not group/world-writable.
chown -R 0:0 "$server"
chmod 755 "$server" "$server/authorized_keys"
chmod 600 "$server/ssh_host_ed25519_key"
chmod 644 "$server/ssh_host_ed25519_key.pub" "$server/authorized_keys/partner"

# Airflow runs as uid 50000 and reads its key from ~/.ssh.
chown -R "$airflow_uid:0" "$client"
chmod 700 "$client"
chmod 600 "$client/partner_ed25519"
chmod 644 "$client/partner_ed25519.pub" "$client/known_hosts"

# A volume mounts root-owned; the partner account must be able to write its folder.
chown "$partner_uid:$partner_gid" "$data"
chmod 755 "$data"
echo "sftp keys ready: host key $(cut -d' ' -f2 "$server/ssh_host_ed25519_key.pub" | cut -c1-16)..."
