#!/bin/sh
# Fill deploy/secrets/ with fresh random secrets for compose.yaml, once; an existing file is
# kept. For a real node, take them from your secret store instead, and keep the three node
# secrets (master-key, node-signing-key, token-secret) backed up: a database backup is
# unreadable without the master key.
#
# The directory is 0700 (no other host user can enter it); the files are 0444 because
# compose bind-mounts them as they are and the containers' users (palermo uid 10001,
# postgres, rabbitmq) must read them.
set -eu
cd "$(dirname "$0")"
umask 077
mkdir -p secrets
chmod 700 secrets
random() { python3 -c "import base64, secrets; print(base64.b64encode(secrets.token_bytes($1)).decode())"; }
word() { python3 -c "import secrets; print(secrets.token_urlsafe(32))"; }
put() {
    if [ ! -e "secrets/$1" ]; then
        printf '%s\n' "$2" > "secrets/$1"
        chmod 444 "secrets/$1"
        echo "created deploy/secrets/$1"
    fi
}
owner=$(word); app=$(word); rabbit=$(word)
put postgres-password "$owner"
put migration-database-url "postgresql://postgres:$owner@postgres:5432/palermo"
put app-db-password "$app"
put database-url "postgresql://palermo_api:$app@postgres:5432/palermo"
put rabbitmq-user.conf "default_user = palermo
default_pass = $rabbit"
put broker-url "amqp://palermo:$rabbit@rabbitmq:5672//"
put master-key "$(random 32)"
put node-signing-key "$(random 32)"
put token-secret "$(random 48)"
put metrics-token "$(word)"
