# Cloud Audit Logs for Cloud Storage data access (who read or wrote which object): the buckets' access log.
# Authoritative for storage.googleapis.com's audit configuration in this project.

resource "google_project_iam_audit_config" "storage" {
  count = var.storage_data_access_logs ? 1 : 0

  project = var.project_id
  service = "storage.googleapis.com"

  audit_log_config {
    log_type = "DATA_READ"
  }
  audit_log_config {
    log_type = "DATA_WRITE"
  }
}
