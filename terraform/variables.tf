# Inputs. Everything about topics, subscriptions, services, buckets and timers comes from ../topology.yaml;
# these variables hold only what differs per deployment (project, region, images, sizing, opt-ins, alerts).

variable "project_id" {
  description = "The Google Cloud project to deploy into (its id, not its number)."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "project_id must be a project id: 6-30 lowercase letters, digits and hyphens, starting with a letter."
  }
}

variable "region" {
  description = "Region for Cloud Run, Artifact Registry, the buckets, Eventarc and Cloud Scheduler."
  type        = string
  default     = "europe-west1"

  validation {
    condition     = can(regex("^[a-z]+-[a-z]+[0-9]+$", var.region))
    error_message = "region must be a Google Cloud region such as europe-west1 or us-central1."
  }
}

variable "firestore_location" {
  description = "Location of the Firestore database (a region such as europe-west1, or a multi-region: eur3, nam5). Defaults to var.region. It cannot change after creation."
  type        = string
  default     = null

  validation {
    condition     = var.firestore_location == null ? true : can(regex("^([a-z]+-[a-z]+[0-9]+|eur3|nam5|nam7)$", var.firestore_location))
    error_message = "firestore_location must be a region (e.g. europe-west1) or a Firestore multi-region (eur3, nam5, nam7)."
  }
}

variable "artifact_registry_repository" {
  description = "Id of the Docker repository in Artifact Registry that Cloud Build pushes the service images to."
  type        = string
  default     = "shop"

  validation {
    condition     = can(regex("^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$", var.artifact_registry_repository))
    error_message = "artifact_registry_repository must be 1-63 lowercase letters, digits and hyphens, starting with a letter."
  }
}

variable "image_tag" {
  description = "Tag of the service images in the Artifact Registry repository (Cloud Build tags them with the commit SHA). Used for every service that var.images does not name."
  type        = string
  default     = "latest"

  validation {
    condition     = can(regex("^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$", var.image_tag))
    error_message = "image_tag must be a Docker tag: up to 128 letters, digits, '_', '.' and '-', not starting with '.' or '-'."
  }
}

variable "images" {
  description = "Full image reference per service name (e.g. { orders = \"europe-west1-docker.pkg.dev/p/shop/orders@sha256:...\" }). A service not named here runs <region>-docker.pkg.dev/<project>/<repository>/<service>:<image_tag>."
  type        = map(string)
  default     = {}

  validation {
    condition     = alltrue([for image in values(var.images) : can(regex("^[^\\s]+[:@][^\\s]+$", image))])
    error_message = "Every images value must be an image reference with a tag or digest (name:tag or name@sha256:...), without spaces."
  }
}

variable "service_defaults" {
  description = "Cloud Run sizing for every service, unless the service has a preset (see topology.tf: the image converter gets more CPU and memory) or an entry in var.service_settings. concurrency is the requests an instance takes at once, and its gunicorn THREADS too (docs/performance.md: a delivery is ~3 ms of CPU and a few Firestore and Pub/Sub round trips, so 16 keep a vCPU busy; beyond that requests only queue)."
  type = object({
    cpu           = optional(string, "1")
    memory        = optional(string, "512Mi")
    concurrency   = optional(number, 16)
    min_instances = optional(number, 0)
    max_instances = optional(number, 10)
    ingress       = optional(string, "INGRESS_TRAFFIC_INTERNAL_ONLY")
  })
  default = {}

  validation {
    condition     = contains(["INGRESS_TRAFFIC_ALL", "INGRESS_TRAFFIC_INTERNAL_ONLY", "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER"], var.service_defaults.ingress)
    error_message = "service_defaults.ingress must be INGRESS_TRAFFIC_ALL, INGRESS_TRAFFIC_INTERNAL_ONLY or INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER."
  }
}

variable "service_settings" {
  description = <<-EOT
    Per-service overrides, keyed by service name from topology.yaml; any field left out keeps the preset or the
    default. Fields: cpu ("1", "2", ...), memory ("512Mi", "2Gi", ...), concurrency (requests per instance),
    min_instances, max_instances, ingress (INGRESS_TRAFFIC_*), buckets (bucket role => "read" | "write" |
    "read_write": which buckets the service uses; each one becomes a BUCKET_<ROLE> variable and an IAM grant on
    that bucket only). A service that consumes a bucket's notification topic always gets "read" on that bucket.
  EOT
  type = map(object({
    cpu           = optional(string)
    memory        = optional(string)
    concurrency   = optional(number)
    min_instances = optional(number)
    max_instances = optional(number)
    ingress       = optional(string)
    buckets       = optional(map(string))
  }))
  default = {}

  validation {
    condition = alltrue([
      for s in values(var.service_settings) :
      s.ingress == null ? true : contains(["INGRESS_TRAFFIC_ALL", "INGRESS_TRAFFIC_INTERNAL_ONLY", "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER"], s.ingress)
    ])
    error_message = "service_settings.<name>.ingress must be INGRESS_TRAFFIC_ALL, INGRESS_TRAFFIC_INTERNAL_ONLY or INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER."
  }

  validation {
    condition = alltrue(flatten([
      for s in values(var.service_settings) : [
        for access in values(s.buckets == null ? {} : s.buckets) : contains(["read", "write", "read_write"], access)
      ]
    ]))
    error_message = "service_settings.<name>.buckets values must be \"read\", \"write\" or \"read_write\"."
  }

  validation {
    condition = alltrue([
      for s in values(var.service_settings) :
      (s.max_instances == null || try(s.max_instances >= 1, false)) && (s.min_instances == null || try(s.min_instances >= 0, false)) && (s.concurrency == null || try(s.concurrency >= 1 && s.concurrency <= 1000, false))
    ])
    error_message = "service_settings: max_instances must be >= 1, min_instances >= 0, concurrency 1..1000."
  }
}

variable "public_orders_api" {
  description = "OPT-IN: let anyone on the internet call the orders HTTP API (grants roles/run.invoker to allUsers on the orders service, and nothing else). Default false: callers need an identity with roles/run.invoker. Put an API gateway or a load balancer with Cloud Armor in front before you turn this on."
  type        = bool
  default     = false
}

variable "orders_api_service" {
  description = "Name of the service (in topology.yaml) that serves the orders HTTP API: the only service var.public_orders_api can open."
  type        = string
  default     = "orders"
}

variable "image_settings" {
  description = "The images service's rendition settings: IMAGE_* variables (services/images/images/image_settings.py), e.g. { IMAGE_FORMATS = \"jpeg,webp,avif\" }. A change makes the images already rendered stale: run the images backfill job (docs/images.md), which gets the same settings."
  type        = map(string)
  default     = {}

  validation {
    condition     = alltrue([for name in keys(var.image_settings) : can(regex("^IMAGE_[A-Z_]+$", name))])
    error_message = "image_settings keys must be IMAGE_* variable names, e.g. IMAGE_FORMATS."
  }
}

variable "console_invokers" {
  description = "Who may open the operator console (roles/run.invoker on the console service, nothing else): IAM members such as \"user:ana@example.com\" or \"group:shop-operators@example.com\"; behind Identity-Aware Proxy, IAP's service agent too (docs/console.md). Default: nobody. A public member is refused."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for member in var.console_invokers : can(regex("^(user|group|serviceAccount|domain):[^\\s]+$", member))])
    error_message = "console_invokers: each entry must be an IAM member of kind user:, group:, serviceAccount: or domain: (the console is never public)."
  }
}

variable "storage_trigger" {
  description = "How a bucket with a notify_topic in topology.yaml reaches its consumer: \"notification\" (a Cloud Storage Pub/Sub notification to the topic, then the topology's push subscription with its dead-letter topic) or \"eventarc\" (an Eventarc Cloud Storage trigger straight to the consumer service; no Pub/Sub notification and no push subscription for that topic)."
  type        = string
  default     = "notification"

  validation {
    condition     = contains(["notification", "eventarc"], var.storage_trigger)
    error_message = "storage_trigger must be \"notification\" or \"eventarc\"."
  }
}

variable "bucket_name_prefix" {
  description = "Prefix for the bucket names of topology.yaml (bucket names are global, the YAML's are not unique). Default: \"<project_id>-\"."
  type        = string
  default     = null

  validation {
    condition     = var.bucket_name_prefix == null ? true : can(regex("^[a-z0-9][a-z0-9._-]{0,30}$", var.bucket_name_prefix))
    error_message = "bucket_name_prefix must be up to 31 lowercase letters, digits, '.', '_' and '-', starting with a letter or digit."
  }
}

variable "uploads_retention_days" {
  description = "Days after which objects in buckets that feed a notify_topic (the uploads) are deleted. 0 keeps them."
  type        = number
  default     = 30

  validation {
    condition     = var.uploads_retention_days >= 0
    error_message = "uploads_retention_days must be 0 or more."
  }
}

variable "noncurrent_version_retention_days" {
  description = "Days a replaced or deleted object version is kept in any bucket (object versioning is on)."
  type        = number
  default     = 7

  validation {
    condition     = var.noncurrent_version_retention_days >= 1
    error_message = "noncurrent_version_retention_days must be at least 1."
  }
}

variable "schedule_time_zone" {
  description = "Time zone of the Cloud Scheduler jobs made from topology.yaml's schedules (their cron expressions)."
  type        = string
  default     = "Etc/UTC"
}

variable "alert_email" {
  description = "E-mail address that receives the monitoring alerts and, through the notifications service, the telemetry alerts. null: the alert policies get no notification channel (console only) and telemetry alert mail goes to the service default."
  type        = string
  default     = null

  validation {
    condition     = var.alert_email == null ? true : can(regex("^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$", var.alert_email))
    error_message = "alert_email must be an e-mail address, or null."
  }
}

variable "oldest_unacked_age_alert_seconds" {
  description = "Alert when the oldest unacknowledged message of a push subscription is older than this (seconds)."
  type        = number
  default     = 600

  validation {
    condition     = var.oldest_unacked_age_alert_seconds >= 60
    error_message = "oldest_unacked_age_alert_seconds must be at least 60."
  }
}

variable "run_5xx_ratio_alert" {
  description = "Alert when more than this fraction of a Cloud Run service's requests answer 5xx over 5 minutes (0.05 = 5%)."
  type        = number
  default     = 0.05

  validation {
    condition     = var.run_5xx_ratio_alert > 0 && var.run_5xx_ratio_alert < 1
    error_message = "run_5xx_ratio_alert must be between 0 and 1."
  }
}

variable "deletion_protection" {
  description = "Protect the Cloud Run services and the Firestore database from `terraform destroy` (turn off only for throw-away projects)."
  type        = bool
  default     = true
}

variable "labels" {
  description = "Labels put on every resource that takes labels (provider default_labels)."
  type        = map(string)
  default     = { app = "shop" }
}

variable "storage_data_access_logs" {
  description = "Turn on Cloud Audit Logs data access logs (DATA_READ, DATA_WRITE) for Cloud Storage: who read or wrote which object. Billed as log volume."
  type        = bool
  default     = true
}
