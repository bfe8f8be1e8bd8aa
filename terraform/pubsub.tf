# Topics, push subscriptions (OIDC, dead-letter policy, exponential backoff) and a pull subscription on every
# dead-letter topic, all from ../topology.yaml.

resource "google_pubsub_topic" "topic" {
  # checkov:skip=CKV_GCP_83:Messages are encrypted at rest with Google-managed keys and kept for 7 days at most; customer-managed keys (a KMS key ring, its IAM) are a per-deployment choice, not a default.
  for_each = local.topics

  name = each.key
  labels = {
    dead-letter = each.value.dead_letter ? "true" : "false"
  }

  depends_on = [google_project_service.enabled]
}

# A consumer's subscription on a bus topic: push to the Cloud Run service at "/", authenticated with the push
# identity's OIDC token, dead-lettered after max_delivery_attempts.
resource "google_pubsub_subscription" "push" {
  for_each = local.push_subscriptions

  name                       = each.key
  topic                      = google_pubsub_topic.topic[each.value.topic].id
  filter                     = each.value.filter
  ack_deadline_seconds       = each.value.ack_deadline_seconds
  message_retention_duration = "${each.value.message_retention_seconds}s"
  enable_message_ordering    = each.value.enable_message_ordering
  labels = {
    consumer = each.value.push_to
  }

  push_config {
    push_endpoint = "${google_cloud_run_v2_service.service[each.value.push_to].uri}/"

    oidc_token {
      service_account_email = google_service_account.push.email
      audience              = google_cloud_run_v2_service.service[each.value.push_to].uri
    }
  }

  dead_letter_policy {
    dead_letter_topic     = google_pubsub_topic.topic[each.value.dead_letter_topic].id
    max_delivery_attempts = each.value.max_delivery_attempts
  }

  retry_policy {
    minimum_backoff = "${each.value.retry_minimum_backoff_seconds}s"
    maximum_backoff = "${each.value.retry_maximum_backoff_seconds}s"
  }

  # Never expire for inactivity (an empty ttl means "never").
  expiration_policy {
    ttl = ""
  }

  depends_on = [
    google_pubsub_topic_iam_member.dead_letter_publisher,
    google_cloud_run_v2_service_iam_member.push_invoker,
  ]
}

# A consumer of a dead-letter topic itself (e.g. a dead-letter recorder). The topology allows it to go without a
# dead-letter topic of its own: its messages are already dead letters, and the T-pull subscription keeps a copy.
resource "google_pubsub_subscription" "dead_letter_push" {
  # checkov:skip=CKV_SHOP_1:Consumers of a dead-letter topic have no dead-letter topic of their own (topology rule); the topic's -pull subscription keeps every message.
  for_each = local.dead_letter_push_subscriptions

  name                       = each.key
  topic                      = google_pubsub_topic.topic[each.value.topic].id
  filter                     = each.value.filter
  ack_deadline_seconds       = each.value.ack_deadline_seconds
  message_retention_duration = "${each.value.message_retention_seconds}s"
  enable_message_ordering    = each.value.enable_message_ordering
  labels = {
    consumer = each.value.push_to
  }

  push_config {
    push_endpoint = "${google_cloud_run_v2_service.service[each.value.push_to].uri}/"

    oidc_token {
      service_account_email = google_service_account.push.email
      audience              = google_cloud_run_v2_service.service[each.value.push_to].uri
    }
  }

  retry_policy {
    minimum_backoff = "${each.value.retry_minimum_backoff_seconds}s"
    maximum_backoff = "${each.value.retry_maximum_backoff_seconds}s"
  }

  expiration_policy {
    ttl = ""
  }

  depends_on = [google_cloud_run_v2_service_iam_member.push_invoker]
}

# Derived rule (stack/topology.py): dead-letter topic T gets pull subscription T-pull, so dead letters are kept
# for inspection and replay. Its backlog is what the dead-letter alert watches.
resource "google_pubsub_subscription" "dead_letter_pull" {
  for_each = local.dead_letter_pulls

  name                       = each.key
  topic                      = google_pubsub_topic.topic[each.value.topic].id
  ack_deadline_seconds       = each.value.ack_deadline_seconds
  message_retention_duration = "${each.value.message_retention_seconds}s"
  retain_acked_messages      = true
  labels = {
    dead-letter = "true"
  }

  expiration_policy {
    ttl = ""
  }
}
