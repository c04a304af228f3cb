# The Temporal worker: runs activities that send mail, rotate keys and take backups. No TOTP
# transit key: no activity reads or writes TOTP secrets (the API enrols and checks them), so a
# worker token cannot decrypt them.

path "secret/data/authflow/database" {
  capabilities = ["read"]
}

# The current password of the service's Postgres role: Vault's database secrets engine owns and
# rotates it (static role); the KV secret above only names the role. Read only: rotating it on
# demand (database/rotate-role) is an operator's action.
path "database/static-creds/authflow" {
  capabilities = ["read"]
}

path "secret/data/authflow/smtp" {
  capabilities = ["read"]
}

# The Temporal API key, when TEMPORAL_API_KEY_FROM_VAULT=true (field api_key; an operator writes it).
path "secret/data/authflow/temporal" {
  capabilities = ["read"]
}

# Rotation rewrites the key set (check-and-set enforced by the rotation activity).
path "secret/data/authflow/signing-keys" {
  capabilities = ["create", "read", "update"]
}

path "secret/data/authflow/codec-keys" {
  capabilities = ["create", "read", "update"]
}

# Backups: a fresh data key per backup file (the file stores only its wrapped form), and
# decrypt to unwrap it for the restore drill and a real restore.
path "transit/datakey/plaintext/authflow-backups" {
  capabilities = ["update"]
}

path "transit/decrypt/authflow-backups" {
  capabilities = ["update"]
}

# Backups: the Vault raft snapshot the backup workflow streams, encrypts and stores. Read only:
# restoring a snapshot (POST sys/storage/raft/snapshot[-force]) is an operator's decision with an
# operator token (docs/operations.md), never something the service can do.
path "sys/storage/raft/snapshot" {
  capabilities = ["read"]
}

# Webhook signing secrets (the API writes them): read to sign each delivery.
path "secret/data/authflow/webhooks/*" {
  capabilities = ["read"]
}

# The OpenID provider's cookie keys: the key rotation prepends a new one (check-and-set).
path "secret/data/authflow/oidc-cookie-keys" {
  capabilities = ["create", "read", "update"]
}
