# Identities, least privilege: one runtime service account per service with only what it uses; a push identity
# that may invoke consumer services only; the Google service agents with grants on the specific resources.

data "google_project" "this" {
  project_id = var.project_id
}

data "google_storage_project_service_account" "gcs" {
  project = var.project_id

  depends_on = [google_project_service.enabled]
}

locals {
  pubsub_service_agent = "serviceAccount:service-${data.google_project.this.number}@gcp-sa-pubsub.iam.gserviceaccount.com"
}

# --- runtime identities ----------------------------------------------------------------------------------------

resource "google_service_account" "service" {
  for_each = local.services

  account_id   = local.service_account_ids[each.key]
  display_name = "Cloud Run service ${each.key}"
  description  = "Runtime identity of the ${each.key} service (Firestore, its own topics and buckets only)."
}

# Firestore: every service keeps its idempotency ledger (and its data) there. Firestore has no finer-grained IAM.
resource "google_project_iam_member" "datastore_user" {
  for_each = local.services

  project = var.project_id
  role    = "roles/datastore.user"
  member  = google_service_account.service[each.key].member
}

# Publisher on exactly the topics the service publishes to (topology: services.<name>.publishes).
resource "google_pubsub_topic_iam_member" "service_publisher" {
  for_each = local.topic_publishers

  topic  = google_pubsub_topic.topic[each.value.topic].name
  role   = "roles/pubsub.publisher"
  member = google_service_account.service[each.value.service].member
}

# Storage roles on exactly the buckets the service uses (var.service_settings.<name>.buckets, presets).
resource "google_storage_bucket_iam_member" "service_bucket" {
  for_each = local.bucket_grants

  bucket = google_storage_bucket.bucket[each.value.bucket].name
  role   = each.value.role
  member = google_service_account.service[each.value.service].member
}

# --- Pub/Sub push identity ------------------------------------------------------------------------------------

resource "google_service_account" "push" {
  account_id   = "pubsub-push"
  display_name = "Pub/Sub push identity"
  description  = "Signs the OIDC tokens of the push subscriptions; may invoke consumer services only."
}

resource "google_cloud_run_v2_service_iam_member" "push_invoker" {
  for_each = local.push_consumers

  location = var.region
  name     = google_cloud_run_v2_service.service[each.key].name
  role     = "roles/run.invoker"
  member   = google_service_account.push.member
}

# The Pub/Sub service agent mints the push identity's OIDC tokens (needed explicitly in projects created before
# April 2021; harmless after). Scoped to this one service account, not the project.
resource "google_service_account_iam_member" "push_token_creator" {
  service_account_id = google_service_account.push.name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = local.pubsub_service_agent

  depends_on = [google_project_service.enabled]
}

# --- dead lettering: the Pub/Sub service agent publishes to each dead-letter topic and acks on each source ------

resource "google_pubsub_topic_iam_member" "dead_letter_publisher" {
  for_each = local.dead_letter_topics

  topic  = google_pubsub_topic.topic[each.key].name
  role   = "roles/pubsub.publisher"
  member = local.pubsub_service_agent

  depends_on = [google_project_service.enabled]
}

resource "google_pubsub_subscription_iam_member" "dead_letter_subscriber" {
  for_each = local.dead_letter_source_subscription

  subscription = google_pubsub_subscription.push[each.key].name
  role         = "roles/pubsub.subscriber"
  member       = local.pubsub_service_agent
}

# The dead-letter recorder reads each source subscription (to store the original topic, so replay needs no lookup).
resource "google_pubsub_subscription_iam_member" "dead_letter_source_viewer" {
  for_each = local.dead_letter_source_viewers

  subscription = google_pubsub_subscription.push[each.value.subscription].name
  role         = "roles/pubsub.viewer"
  member       = "serviceAccount:${google_service_account.service[each.value.service].email}"
}

# --- scheduler identity ---------------------------------------------------------------------------------------

resource "google_service_account" "scheduler" {
  account_id   = "scheduler-invoker"
  display_name = "Cloud Scheduler invoker"
  description  = "Signs the OIDC tokens of the Cloud Scheduler jobs; may invoke the scheduled services only."
}

resource "google_cloud_run_v2_service_iam_member" "scheduler_invoker" {
  for_each = local.scheduled_services

  location = var.region
  name     = google_cloud_run_v2_service.service[each.key].name
  role     = "roles/run.invoker"
  member   = google_service_account.scheduler.member
}

# --- the operators of the console -----------------------------------------------------------------------------

# Only the members named in var.console_invokers (default: none) may open the console; it is never public.
resource "google_cloud_run_v2_service_iam_member" "console_invoker" {
  for_each = local.console_invokers

  location = var.region
  name     = google_cloud_run_v2_service.service["console"].name
  role     = "roles/run.invoker"
  member   = each.value
}

# --- the one public opt-in ------------------------------------------------------------------------------------

# Only with var.public_orders_api = true, and only on the orders API service. Documented in docs/deploy.md.
resource "google_cloud_run_v2_service_iam_member" "public_orders_api" {
  # checkov:skip=CKV_SHOP_2:Explicit, documented opt-in (var.public_orders_api, default false) for the orders HTTP API only.
  for_each = local.public_services

  location = var.region
  name     = google_cloud_run_v2_service.service[each.key].name
  role     = "roles/run.invoker"
  member   = "allUsers"
}
