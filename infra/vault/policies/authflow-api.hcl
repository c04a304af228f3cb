# The API process: reads its own secrets, keeps the signing keys, encrypts TOTP secrets.
# Nothing else: no sys/, no other KV prefix, no auth method configuration.

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

# Signing keys: the API creates the first keys on a fresh install (check-and-set create only),
# adds the active ES256/RS256 keys to a set from before them (check-and-set update, on start only;
# domain/sessions/signing-keys.ts) and reads the key set; rotation is the worker's job. The API
# already holds every private key in memory, so update adds no power to sign.
path "secret/data/authflow/signing-keys" {
  capabilities = ["create", "read", "update"]
}

# The OpenID provider's cookie keys (domain/oidc/cookie-keys.ts): the API creates the first one
# on a fresh install (create-only write) and reads them; rotation is the worker's job.
path "secret/data/authflow/oidc-cookie-keys" {
  capabilities = ["create", "read"]
}

path "secret/data/authflow/codec-keys" {
  capabilities = ["read"]
}

# Not used by the service (it signs with the in-memory keys above): bench/suites/signing.ts
# measures transit signing with the API's identity, so the bench keeps sign and key metadata.
path "transit/sign/authflow-jwt" {
  capabilities = ["update"]
}

path "transit/keys/authflow-jwt" {
  capabilities = ["read"]
}

path "transit/encrypt/authflow-totp" {
  capabilities = ["update"]
}

path "transit/decrypt/authflow-totp" {
  capabilities = ["update"]
}

# Webhook signing secrets, one per subscription: written when an admin subscribes, read and
# rewritten (check-and-set) when the admin rotates it, destroyed (every version) when the
# subscription is removed. The worker reads them to sign.
path "secret/data/authflow/webhooks/*" {
  capabilities = ["create", "read", "update"]
}

path "secret/metadata/authflow/webhooks/*" {
  capabilities = ["delete"]
}
