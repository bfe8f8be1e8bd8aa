output "service_urls" {
  description = "Cloud Run URL of each service (callers need roles/run.invoker, except the orders API with public_orders_api)."
  value       = { for name, service in google_cloud_run_v2_service.service : name => service.uri }
}

output "service_accounts" {
  description = "Runtime service account e-mail of each service."
  value       = { for name, account in google_service_account.service : name => account.email }
}

output "push_service_account" {
  description = "The identity whose OIDC token Pub/Sub push subscriptions present to the consumer services."
  value       = google_service_account.push.email
}

output "bucket_names" {
  description = "Bucket name per bucket role of topology.yaml (the YAML name with var.bucket_name_prefix)."
  value       = { for role, bucket in google_storage_bucket.bucket : role => bucket.name }
}

output "topic_names" {
  description = "Every Pub/Sub topic id, dead-letter topics included."
  value       = sort([for topic in google_pubsub_topic.topic : topic.name])
}

output "subscription_names" {
  description = "Push subscriptions (with their dead-letter topic), dead-letter consumers, and the dead-letter pull subscriptions."
  value = {
    push             = sort(keys(google_pubsub_subscription.push))
    dead_letter_push = sort(keys(google_pubsub_subscription.dead_letter_push))
    dead_letter_pull = sort(keys(google_pubsub_subscription.dead_letter_pull))
  }
}

output "artifact_registry_url" {
  description = "Where Cloud Build pushes the images: <url>/<service>:<tag>."
  value       = local.artifact_registry_url
}

output "service_images" {
  description = "The image each Cloud Run service runs."
  value       = local.service_images
}

output "images_backfill_env" {
  description = "Environment of the images backfill job: the images service's, and the uploads topic (write it to a file for --env-vars-file)."
  value       = local.images_backfill_env
}

output "images_backfill_deploy" {
  description = "The gcloud command that deploys the images backfill job (docs/images.md); null when there is no backfill (storage_trigger = \"eventarc\")."
  value = local.images_backfill ? join(" ", [
    "gcloud run jobs deploy images-backfill --project ${var.project_id} --region ${var.region}",
    "--image ${local.service_images["images"]} --service-account ${google_service_account.images_backfill[0].email}",
    "--command python --args=-m,images.backfill,--rate,50 --env-vars-file images-backfill-env.json",
    "--cpu 1 --memory 512Mi --task-timeout 6h --max-retries 3",
  ]) : null
}
