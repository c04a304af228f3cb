# Vault server configuration for the local stack. The launcher fills the {{...}} placeholders
# (data directory and ports) and writes the result beside the data. Production differs: TLS on
# the listener, a real cluster address, auto-unseal (KMS/HSM), and no file next to the keys.
storage "raft" {
  path    = "{{DATA_DIR}}/raft"
  node_id = "authflow-1"
}

listener "tcp" {
  address         = "127.0.0.1:{{PORT}}"
  cluster_address = "127.0.0.1:{{CLUSTER_PORT}}"
  tls_disable     = true
  telemetry {
    unauthenticated_metrics_access = true
  }
}

api_addr      = "http://127.0.0.1:{{PORT}}"
cluster_addr  = "http://127.0.0.1:{{CLUSTER_PORT}}"
disable_mlock = true
ui            = true
log_level     = "warn"

telemetry {
  prometheus_retention_time = "1h"
  disable_hostname          = true
}
