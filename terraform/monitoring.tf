# Alerts: any message on a dead-letter subscription, a push subscription falling behind, Cloud Run 5xx rate.

resource "google_monitoring_notification_channel" "email" {
  count = var.alert_email == null ? 0 : 1

  display_name = "Shop alerts (${var.alert_email})"
  type         = "email"
  labels = {
    email_address = var.alert_email
  }
}

locals {
  notification_channels = [for channel in google_monitoring_notification_channel.email : channel.id]
}

resource "google_monitoring_alert_policy" "dead_letters" {
  for_each = local.dead_letter_pulls

  display_name          = "Dead letters on ${each.key}"
  combiner              = "OR"
  severity              = "ERROR"
  notification_channels = local.notification_channels

  conditions {
    display_name = "${each.key} has undelivered messages"
    condition_threshold {
      filter          = "resource.type = \"pubsub_subscription\" AND resource.labels.subscription_id = \"${google_pubsub_subscription.dead_letter_pull[each.key].name}\" AND metric.type = \"pubsub.googleapis.com/subscription/num_undelivered_messages\""
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "0s"
      aggregations {
        alignment_period   = "60s"
        per_series_aligner = "ALIGN_MAX"
      }
    }
  }

  documentation {
    mime_type = "text/markdown"
    content   = "A message was dead-lettered from topic `${each.value.topic}`'s source subscription after its delivery attempts ran out. Inspect it with a pull on `${each.key}`, fix the cause, then replay it (docs/deploy.md, Operations)."
  }
}

resource "google_monitoring_alert_policy" "oldest_unacked" {
  for_each = local.pubsub_subscriptions

  display_name          = "Backlog age on ${each.key}"
  combiner              = "OR"
  severity              = "WARNING"
  notification_channels = local.notification_channels

  conditions {
    display_name = "${each.key}: oldest unacked message older than ${var.oldest_unacked_age_alert_seconds}s"
    condition_threshold {
      filter          = "resource.type = \"pubsub_subscription\" AND resource.labels.subscription_id = \"${each.key}\" AND metric.type = \"pubsub.googleapis.com/subscription/oldest_unacked_message_age\""
      comparison      = "COMPARISON_GT"
      threshold_value = var.oldest_unacked_age_alert_seconds
      duration        = "300s"
      aggregations {
        alignment_period   = "60s"
        per_series_aligner = "ALIGN_MAX"
      }
    }
  }

  documentation {
    mime_type = "text/markdown"
    content   = "Push subscription `${each.key}` (to service `${each.value.push_to}`) is not keeping up: check the service's errors and its max instances."
  }

  depends_on = [google_pubsub_subscription.push, google_pubsub_subscription.dead_letter_push]
}

resource "google_monitoring_alert_policy" "run_5xx" {
  for_each = local.services

  display_name          = "5xx rate of ${each.key}"
  combiner              = "OR"
  severity              = "ERROR"
  notification_channels = local.notification_channels

  conditions {
    display_name = "${each.key}: more than ${var.run_5xx_ratio_alert * 100}% of requests answer 5xx"
    condition_threshold {
      filter             = "resource.type = \"cloud_run_revision\" AND resource.labels.service_name = \"${google_cloud_run_v2_service.service[each.key].name}\" AND metric.type = \"run.googleapis.com/request_count\" AND metric.labels.response_code_class = \"5xx\""
      denominator_filter = "resource.type = \"cloud_run_revision\" AND resource.labels.service_name = \"${google_cloud_run_v2_service.service[each.key].name}\" AND metric.type = \"run.googleapis.com/request_count\""
      comparison         = "COMPARISON_GT"
      threshold_value    = var.run_5xx_ratio_alert
      duration           = "300s"
      aggregations {
        alignment_period     = "300s"
        per_series_aligner   = "ALIGN_RATE"
        cross_series_reducer = "REDUCE_SUM"
        group_by_fields      = ["resource.labels.service_name"]
      }
      denominator_aggregations {
        alignment_period     = "300s"
        per_series_aligner   = "ALIGN_RATE"
        cross_series_reducer = "REDUCE_SUM"
        group_by_fields      = ["resource.labels.service_name"]
      }
    }
  }

  documentation {
    mime_type = "text/markdown"
    content   = "Service `${each.key}` answers 5xx to more than ${var.run_5xx_ratio_alert * 100}% of requests. 503 is eventkit's retryable answer (Pub/Sub redelivers); persistent 5xx end in the dead-letter topics. Check the service's logs."
  }
}
