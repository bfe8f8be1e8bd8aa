# The Docker repository Cloud Build pushes the service images to.

resource "google_artifact_registry_repository" "images" {
  # checkov:skip=CKV_GCP_84:Images are encrypted at rest with Google-managed keys; customer-managed keys would add a KMS key ring and its IAM, for images that hold no customer data.
  repository_id = var.artifact_registry_repository
  location      = var.region
  format        = "DOCKER"
  description   = "Service images of the shop back end (one image per service in topology.yaml)."

  # Keep the 20 most recent versions of each image; delete older ones once they are 30 days old.
  cleanup_policies {
    id     = "keep-recent"
    action = "KEEP"
    most_recent_versions {
      keep_count = 20
    }
  }
  cleanup_policies {
    id     = "delete-old"
    action = "DELETE"
    condition {
      older_than = "2592000s"
    }
  }

  depends_on = [google_project_service.enabled]
}
