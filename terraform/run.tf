# One Cloud Run (v2) service per service in ../topology.yaml.

locals {
  artifact_registry_url = "${var.region}-docker.pkg.dev/${var.project_id}/${var.artifact_registry_repository}"
  service_images = {
    for name in keys(local.services) : name => lookup(var.images, name, "${local.artifact_registry_url}/${name}:${var.image_tag}")
  }
}

resource "google_cloud_run_v2_service" "service" {
  for_each = local.services

  name                = each.key
  location            = var.region
  ingress             = local.service_settings[each.key].ingress
  deletion_protection = var.deletion_protection
  labels = {
    service = each.key
  }

  template {
    service_account                  = google_service_account.service[each.key].email
    timeout                          = "${each.value.request_timeout_seconds}s"
    max_instance_request_concurrency = local.service_settings[each.key].concurrency

    scaling {
      min_instance_count = local.service_settings[each.key].min_instances
      max_instance_count = local.service_settings[each.key].max_instances
    }

    containers {
      image = local.service_images[each.key]

      ports {
        container_port = 8080
      }

      resources {
        limits = {
          cpu    = local.service_settings[each.key].cpu
          memory = local.service_settings[each.key].memory
        }
        cpu_idle          = true
        startup_cpu_boost = true
      }

      dynamic "env" {
        for_each = local.service_env[each.key]
        content {
          name  = env.key
          value = env.value
        }
      }

      # Ready = the service's own function answers GET /ready (eventkit/readiness.py): the same probe as the
      # image's HEALTHCHECK, which compose and the Cloud Build smoke step wait for.
      startup_probe {
        initial_delay_seconds = 0
        period_seconds        = 2
        timeout_seconds       = 1
        failure_threshold     = 30

        http_get {
          path = "/ready"
          port = 8080
        }
      }
    }
  }

  lifecycle {
    precondition {
      condition     = alltrue([for name in keys(var.service_settings) : contains(keys(local.services), name)])
      error_message = "var.service_settings names a service that is not in topology.yaml: ${join(", ", [for name in keys(var.service_settings) : name if !contains(keys(local.services), name)])}."
    }
    precondition {
      condition     = alltrue([for name in keys(var.images) : contains(keys(local.services), name)])
      error_message = "var.images names a service that is not in topology.yaml: ${join(", ", [for name in keys(var.images) : name if !contains(keys(local.services), name)])}."
    }
    precondition {
      condition     = alltrue(flatten([for settings in values(local.service_settings) : [for role in keys(settings.buckets) : contains(keys(local.buckets), role)]]))
      error_message = "A service's buckets (var.service_settings or a preset) name a bucket role that is not in topology.yaml."
    }
  }

  depends_on = [google_project_service.enabled]
}
