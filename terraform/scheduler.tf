# Timers from ../topology.yaml's schedules: an authenticated (OIDC) POST to the service's path. The outbox sweeper
# is one of them; the local stack's scheduler calls the same paths.

resource "google_cloud_scheduler_job" "schedule" {
  for_each = local.schedules

  name             = each.key
  description      = "POST ${each.value.path} on ${each.value.service} (topology.yaml schedules.${each.key})"
  region           = var.region
  schedule         = each.value.cron
  time_zone        = var.schedule_time_zone
  attempt_deadline = "${local.services[each.value.service].request_timeout_seconds}s"

  retry_config {
    retry_count          = 0
    min_backoff_duration = "5s"
    max_backoff_duration = "60s"
  }

  http_target {
    uri         = "${google_cloud_run_v2_service.service[each.value.service].uri}${each.value.path}"
    http_method = "POST"

    oidc_token {
      service_account_email = google_service_account.scheduler.email
      audience              = google_cloud_run_v2_service.service[each.value.service].uri
    }
  }

  depends_on = [
    google_project_service.enabled,
    google_cloud_run_v2_service_iam_member.scheduler_invoker,
  ]
}
