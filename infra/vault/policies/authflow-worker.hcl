# The Temporal worker: runs activities that send mail, rotate keys and take backups.

path "secret/data/authflow/database" {
  capabilities = ["read"]
}

path "secret/data/authflow/smtp" {
  capabilities = ["read"]
}

# Rotation rewrites the key set (check-and-set enforced by the rotation activity).
path "secret/data/authflow/signing-keys" {
  capabilities = ["create", "read", "update"]
}

path "secret/data/authflow/codec-keys" {
  capabilities = ["create", "read", "update"]
}

path "transit/encrypt/authflow-totp" {
  capabilities = ["update"]
}

path "transit/decrypt/authflow-totp" {
  capabilities = ["update"]
}

path "transit/datakey/plaintext/authflow-backups" {
  capabilities = ["update"]
}

path "transit/decrypt/authflow-backups" {
  capabilities = ["update"]
}
