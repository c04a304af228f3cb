# Operator commands that need only the database: create-admin and migrate. They log in with their
# own AppRole (authflow-cli), never with a service's secret-id, so running them spends none of the
# API's or the worker's secret-id uses. No signing keys, no SMTP, no transit, no Temporal key.

path "secret/data/authflow/database" {
  capabilities = ["read"]
}

# The current password of the service's Postgres role (Vault's database secrets engine, static role).
path "database/static-creds/authflow" {
  capabilities = ["read"]
}
