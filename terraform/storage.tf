# Buckets from ../topology.yaml: uniform access, public access prevention enforced, versioned, with lifecycle
# rules; a Pub/Sub notification (OBJECT_FINALIZE, JSON_API_V1) for each bucket with a notify_topic, or an Eventarc
# Cloud Storage trigger instead (var.storage_trigger = "eventarc").

resource "google_storage_bucket" "bucket" {
  # checkov:skip=CKV_GCP_62:Access logs go to Cloud Audit Logs (data access logs for storage.googleapis.com, audit.tf), not to a second bucket of legacy usage logs.
  for_each = local.buckets

  name                        = each.value.name
  location                    = var.region
  storage_class               = "STANDARD"
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = false
  labels = {
    role = replace(each.key, "_", "-")
  }

  versioning {
    enabled = true
  }

  # Uploads (buckets that feed a notification topic) are transient inputs: delete them after a while.
  dynamic "lifecycle_rule" {
    for_each = each.value.notify_topic != null && var.uploads_retention_days > 0 ? [var.uploads_retention_days] : []
    content {
      action {
        type = "Delete"
      }
      condition {
        age = lifecycle_rule.value
      }
    }
  }

  # Replaced or deleted object versions are kept for a short while only.
  lifecycle_rule {
    action {
      type = "Delete"
    }
    condition {
      days_since_noncurrent_time = var.noncurrent_version_retention_days
      with_state                 = "ARCHIVED"
    }
  }

  lifecycle_rule {
    action {
      type = "AbortIncompleteMultipartUpload"
    }
    condition {
      age = 1
    }
  }
}

resource "google_storage_notification" "notify" {
  for_each = local.storage_notifications

  bucket         = google_storage_bucket.bucket[each.key].name
  topic          = google_pubsub_topic.topic[each.value.notify_topic].id
  payload_format = "JSON_API_V1"
  event_types    = ["OBJECT_FINALIZE"]

  depends_on = [google_pubsub_topic_iam_member.storage_notification_publisher]
}

# The Cloud Storage service agent publishes the notifications: publisher on those topics only.
resource "google_pubsub_topic_iam_member" "storage_notification_publisher" {
  for_each = local.storage_notifications

  topic  = google_pubsub_topic.topic[each.value.notify_topic].name
  role   = "roles/pubsub.publisher"
  member = data.google_storage_project_service_account.gcs.member
}

# --- Eventarc alternative ------------------------------------------------------------------------------------

resource "google_service_account" "eventarc" {
  count = length(local.eventarc_triggers) > 0 ? 1 : 0

  account_id   = "eventarc-trigger"
  display_name = "Eventarc trigger identity"
  description  = "Identity of the Eventarc Cloud Storage triggers; may invoke their destination services only."
}

resource "google_eventarc_trigger" "storage" {
  for_each = local.eventarc_triggers

  name            = each.key
  location        = var.region
  service_account = google_service_account.eventarc[0].email
  labels = {
    consumer = each.value.service
  }

  matching_criteria {
    attribute = "type"
    value     = "google.cloud.storage.object.v1.finalized"
  }
  matching_criteria {
    attribute = "bucket"
    value     = google_storage_bucket.bucket[each.value.bucket].name
  }

  destination {
    cloud_run_service {
      service = google_cloud_run_v2_service.service[each.value.service].name
      region  = var.region
      path    = "/"
    }
  }

  depends_on = [
    google_project_iam_member.eventarc_event_receiver,
    google_project_iam_member.storage_agent_pubsub_publisher,
    google_cloud_run_v2_service_iam_member.eventarc_invoker,
  ]
}

# Eventarc's own requirements: the trigger identity receives events (project-level role, the only scope it has)
# and invokes the destination services; the Cloud Storage service agent publishes to Eventarc's transport topics,
# which Eventarc creates and names itself (hence project level).
resource "google_project_iam_member" "eventarc_event_receiver" {
  count = length(local.eventarc_triggers) > 0 ? 1 : 0

  project = var.project_id
  role    = "roles/eventarc.eventReceiver"
  member  = google_service_account.eventarc[0].member
}

resource "google_project_iam_member" "storage_agent_pubsub_publisher" {
  count = length(local.eventarc_triggers) > 0 ? 1 : 0

  project = var.project_id
  role    = "roles/pubsub.publisher"
  member  = data.google_storage_project_service_account.gcs.member
}

resource "google_cloud_run_v2_service_iam_member" "eventarc_invoker" {
  for_each = local.eventarc_consumers

  location = var.region
  name     = google_cloud_run_v2_service.service[each.key].name
  role     = "roles/run.invoker"
  member   = google_service_account.eventarc[0].member
}
