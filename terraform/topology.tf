# ../topology.yaml, decoded and completed the way stack/topology.py reads it (the local stack's loader, which
# also validates the file: unknown keys, references, ranges). Every resource that comes from the topology takes
# its for_each from a local here, so a new service, topic, subscription, bucket or schedule needs no change here.
#
# This file holds locals only, and they depend on nothing but the YAML and the variables: the offline tests
# evaluate them with `terraform console` (no provider needed) and compare them with the Python loader.

locals {
  topology = yamldecode(file("${path.module}/../topology.yaml"))

  subscription_setting_keys = [
    "ack_deadline_seconds",
    "max_delivery_attempts",
    "retry_minimum_backoff_seconds",
    "retry_maximum_backoff_seconds",
    "message_retention_seconds",
  ]
  # `defaults:` and `defaults.subscription:` are optional (and may be empty) in the YAML.
  subscription_defaults = {
    for key in local.subscription_setting_keys : key => try(local.topology.defaults.subscription[key], null)
  }

  topics = {
    for name, topic in local.topology.topics : name => {
      description = try(coalesce(topic.description, ""), "")
      dead_letter = try(topic.dead_letter == true, false)
    }
  }
  dead_letter_topics = { for name, topic in local.topics : name => topic if topic.dead_letter }

  # Same derived rule as stack/topology.py's dead_letter_pull_name: dead-letter topic T gets pull subscription T-pull.
  dead_letter_pull_suffix = "-pull"
  dead_letter_pulls = {
    for name, topic in local.dead_letter_topics : "${name}${local.dead_letter_pull_suffix}" => {
      topic                     = name
      ack_deadline_seconds      = coalesce(local.subscription_defaults.ack_deadline_seconds, 60)
      message_retention_seconds = coalesce(local.subscription_defaults.message_retention_seconds, 604800)
    }
  }

  services = {
    for name, service in local.topology.services : name => {
      target                  = service.target
      request_timeout_seconds = service.request_timeout_seconds
      publishes               = try([for topic in service.publishes : topic], [])
    }
  }

  subscriptions = {
    for name, sub in local.topology.subscriptions : name => merge(
      {
        topic             = sub.topic
        push_to           = sub.push_to
        filter            = try(sub.filter, null)
        dead_letter_topic = try(sub.dead_letter_topic, null)
        # Pub/Sub sets it only when it creates a subscription: changing it replaces the subscription.
        enable_message_ordering = try(sub.enable_message_ordering, false)
      },
      { for key in local.subscription_setting_keys : key => try(sub[key], local.subscription_defaults[key]) },
    )
  }

  schedules = {
    for name, schedule in try(coalesce(local.topology.schedules, {}), {}) : name => {
      service = schedule.service
      path    = schedule.path
      cron    = schedule.cron
    }
  }

  # Buckets: the YAML's names, made globally unique with a prefix (default "<project>-").
  bucket_name_prefix = var.bucket_name_prefix == null ? "${var.project_id}-" : var.bucket_name_prefix
  buckets = {
    for role, bucket in local.topology.buckets : role => {
      name         = "${local.bucket_name_prefix}${bucket.name}"
      notify_topic = try(bucket.notify_topic, null)
    }
  }
  notify_topic_bucket = {
    for role, bucket in local.buckets : bucket.notify_topic => role if bucket.notify_topic != null
  }

  # --- how each subscription is realised -------------------------------------------------------------------
  # With storage_trigger = "eventarc", a subscription on a bucket's notification topic becomes an Eventarc
  # Cloud Storage trigger to the same service (and the bucket gets no Pub/Sub notification).
  eventarc_triggers = var.storage_trigger != "eventarc" ? {} : {
    for name, sub in local.subscriptions : name => {
      service = sub.push_to
      bucket  = local.notify_topic_bucket[sub.topic]
    } if contains(keys(local.notify_topic_bucket), sub.topic)
  }
  pubsub_subscriptions = {
    for name, sub in local.subscriptions : name => sub if !contains(keys(local.eventarc_triggers), name)
  }
  # Every subscription on a bus topic has a dead-letter topic (the loader insists); only consumers of a
  # dead-letter topic itself may go without one.
  push_subscriptions              = { for name, sub in local.pubsub_subscriptions : name => sub if sub.dead_letter_topic != null }
  dead_letter_push_subscriptions  = { for name, sub in local.pubsub_subscriptions : name => sub if sub.dead_letter_topic == null }
  eventarc_buckets                = toset([for trigger in values(local.eventarc_triggers) : trigger.bucket])
  storage_notifications           = { for role, bucket in local.buckets : role => bucket if bucket.notify_topic != null && !contains(local.eventarc_buckets, role) }
  push_consumers                  = toset([for sub in values(local.pubsub_subscriptions) : sub.push_to])
  eventarc_consumers              = toset([for trigger in values(local.eventarc_triggers) : trigger.service])
  scheduled_services              = toset([for schedule in values(local.schedules) : schedule.service])
  dead_letter_source_subscription = { for name, sub in local.push_subscriptions : name => sub.dead_letter_topic }
  # The services that record a dead-letter topic's messages may look up the source subscription (its topic, for
  # replay): "<source subscription>/<recording service>".
  dead_letter_source_viewers = merge([
    for name, sub in local.push_subscriptions : {
      for recorder in values(local.dead_letter_push_subscriptions) :
      "${name}/${recorder.push_to}" => { subscription = name, service = recorder.push_to }
      if recorder.topic == sub.dead_letter_topic
    }
  ]...)

  # --- per-service deployment settings ---------------------------------------------------------------------
  # What the code needs, whatever the deployment: the image converter decodes large photos (more CPU and memory,
  # few requests at a time) and writes renditions; the HTTP APIs take traffic from outside Google Cloud (their
  # ingress is open, their IAM is not: see var.public_orders_api). Presets for a service missing from the YAML are
  # ignored. var.service_settings overrides any field.
  service_presets = {
    orders = { ingress = "INGRESS_TRAFFIC_ALL" }
    # Operators reach the console from their browsers (`gcloud run services proxy`, or IAP); IAM decides who.
    # Its images page creates uploads (never replaces one: objectCreator) and shows the renditions (objectViewer).
    console = {
      ingress = "INGRESS_TRAFFIC_ALL"
      buckets = { uploads = "write", renditions = "read" }
    }
    "telemetry-ingest" = { ingress = "INGRESS_TRAFFIC_ALL" }
    images = {
      cpu         = "2"
      memory      = "2Gi"
      concurrency = 4
      buckets     = { renditions = "read_write" }
    }
  }

  # A service consuming a bucket's notification topic reads that bucket.
  notification_readers = {
    for service in keys(local.services) : service => {
      for role in distinct([
        for sub in values(local.subscriptions) : local.notify_topic_bucket[sub.topic]
        if sub.push_to == service && contains(keys(local.notify_topic_bucket), sub.topic)
      ]) : role => "read"
    }
  }

  service_settings = {
    for name in keys(local.services) : name => merge(
      var.service_defaults,
      { for key, value in try(local.service_presets[name], {}) : key => value if key != "buckets" },
      { for key, value in try(var.service_settings[name], {}) : key => value if value != null && key != "buckets" },
      {
        buckets = merge(
          local.notification_readers[name],
          try(local.service_presets[name].buckets, {}),
          try(coalesce(var.service_settings[name].buckets, {}), {}),
        )
      },
    )
  }

  # The env-name rule, eventkit.config.env_name's (the services read their variables by it): every run of
  # characters other than A-Z a-z 0-9 becomes one "_", a leading or trailing "_" goes, the rest is upper-cased
  # (order-events -> ORDER_EVENTS). For each topic a service publishes to and each bucket role.
  env_named = distinct(concat(flatten([for service in values(local.services) : service.publishes]), keys(local.buckets)))
  env_names = { for name in local.env_named : name => upper(trim(replace(name, "/[^A-Za-z0-9]+/", "_"), "_")) }

  # Environment of each service (K_SERVICE is set by Cloud Run): eventkit's TOPIC_<NAME> / BUCKET_<ROLE>.
  service_env = {
    for name, service in local.services : name => merge(
      # FUNCTION_TARGET: one image may serve two services (orders / order-saga) with different entry points.
      { GOOGLE_CLOUD_PROJECT = var.project_id, FUNCTION_TARGET = service.target },
      # gunicorn serves as many requests at once as Cloud Run may send (functions-framework's default is 4 x the
      # CPUs it sees): with fewer threads, requests wait inside the instance for one while the autoscaler, which
      # measures in-flight requests against the concurrency setting, sees room to spare.
      { THREADS = tostring(local.service_settings[name].concurrency) },
      { for topic in service.publishes : "TOPIC_${local.env_names[topic]}" => topic },
      { for role in keys(local.service_settings[name].buckets) : "BUCKET_${local.env_names[role]}" => local.buckets[role].name },
      # Telemetry alert mail goes to the same address as the monitoring alerts.
      name == "notifications" && var.alert_email != null ? { ALERT_EMAIL = var.alert_email } : {},
      # The image converter resizes and encodes on as many threads as its instance has whole vCPUs.
      name == "images" && can(tonumber(local.service_settings[name].cpu)) ? {
        IMAGE_THREADS = tostring(max(1, floor(tonumber(local.service_settings[name].cpu))))
      } : {},
      # The rendition settings (sizes, formats, qualities): the backfill job gets the same environment.
      name == "images" ? var.image_settings : {},
      # The console refuses an upload over the images service's limit before storing it: the same limit.
      name == "console" ? { for key, value in var.image_settings : key => value if key == "IMAGE_MAX_UPLOAD_BYTES" } : {},
    )
  }

  # The images backfill job (images_backfill.tf): the images service's environment and the uploads topic, where
  # a subscription reads that topic (not with storage_trigger = "eventarc").
  images_backfill = (
    var.storage_trigger == "notification" && contains(keys(local.services), "images")
    && try(local.buckets["uploads"].notify_topic, null) != null
  )
  images_backfill_env = local.images_backfill ? merge(
    local.service_env["images"],
    { TOPIC_UPLOAD_EVENTS = local.buckets["uploads"].notify_topic },
  ) : {}

  bucket_roles = {
    read       = "roles/storage.objectViewer"
    write      = "roles/storage.objectCreator"
    read_write = "roles/storage.objectUser"
  }
  bucket_grants = merge([
    for service, settings in local.service_settings : {
      for role, access in settings.buckets : "${service}/${role}" => {
        service = service
        bucket  = role
        role    = local.bucket_roles[access]
      }
    }
  ]...)
  topic_publishers = merge([
    for service, definition in local.services : {
      for topic in definition.publishes : "${service}/${topic}" => { service = service, topic = topic }
    }
  ]...)

  # Cloud Run services the push identity may invoke: push targets only (never the orders API unless it consumes).
  public_services = var.public_orders_api && contains(keys(local.services), var.orders_api_service) ? toset([var.orders_api_service]) : toset([])

  # The operators who may invoke the console (var.console_invokers), when the topology has one.
  console_invokers = contains(keys(local.services), "console") ? toset(var.console_invokers) : toset([])

  # One runtime service account per service (account ids: 6-30 characters; long names are cut and hashed).
  service_account_ids = {
    for name in keys(local.services) : name => (
      length(name) <= 22 ? "run-sa-${name}" : "run-sa-${substr(name, 0, 14)}-${substr(sha1(name), 0, 8)}"
    )
  }
}
