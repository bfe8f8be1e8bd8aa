# The images backfill (services/images/images/backfill.py: re-render the uploads recorded under other rendition
# settings) runs as a Cloud Run job from the images service's own image and environment, so it computes the same
# settings fingerprint as the service. Its identity may list and read the uploads bucket, use Firestore (the
# records it reads, its resumable position) and publish to the uploads topic only; it may also see the topic's
# subscriptions, to refuse to send into a topic nothing reads.
#
# The job itself is deployed with the command in the images_backfill output: the Google provider schema excerpt
# this repository checks its Terraform against (schema/) has no google_cloud_run_v2_job yet (docs/images.md).
# With storage_trigger = "eventarc" no subscription reads the uploads topic, so there is no backfill
# (local.images_backfill, topology.tf).

resource "google_service_account" "images_backfill" {
  count = local.images_backfill ? 1 : 0

  account_id   = "images-backfill"
  display_name = "Cloud Run job images-backfill"
  description  = "Runtime identity of the images backfill job (reads uploads, publishes their notifications)."
}

resource "google_project_iam_member" "images_backfill_datastore" {
  count = local.images_backfill ? 1 : 0

  project = var.project_id
  role    = "roles/datastore.user"
  member  = google_service_account.images_backfill[0].member
}

resource "google_storage_bucket_iam_member" "images_backfill_uploads" {
  count = local.images_backfill ? 1 : 0

  bucket = google_storage_bucket.bucket["uploads"].name
  role   = "roles/storage.objectViewer"
  member = google_service_account.images_backfill[0].member
}

resource "google_pubsub_topic_iam_member" "images_backfill_publisher" {
  count = local.images_backfill ? 1 : 0

  topic  = google_pubsub_topic.topic[local.buckets["uploads"].notify_topic].name
  role   = "roles/pubsub.publisher"
  member = google_service_account.images_backfill[0].member
}

resource "google_pubsub_topic_iam_member" "images_backfill_viewer" {
  count = local.images_backfill ? 1 : 0

  topic  = google_pubsub_topic.topic[local.buckets["uploads"].notify_topic].name
  role   = "roles/pubsub.viewer"
  member = google_service_account.images_backfill[0].member
}
