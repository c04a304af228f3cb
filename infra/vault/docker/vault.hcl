# Vault server configuration for docker-compose (same as infra/vault/vault.hcl with container paths).
# Production differs: TLS on the listener, a real cluster address, auto-unseal (KMS/HSM), and no file next to the keys.
storage "raft" {
  path    = "/vault/data"
  node_id = "authflow-1"
}

listener "tcp" {
  address         = "0.0.0.0:8200"
  cluster_address = "0.0.0.0:8201"
  tls_disable     = true
  telemetry {
    unauthenticated_metrics_access = true
  }
}

api_addr      = "http://vault:8200"
cluster_addr  = "http://vault:8201"
disable_mlock = true
ui            = true
log_level     = "warn"

telemetry {
  prometheus_retention_time = "1h"
  disable_hostname          = true
}
