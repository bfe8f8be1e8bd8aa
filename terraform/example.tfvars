# Copy to e.g. prod.tfvars and pass it with `terraform apply -var-file=prod.tfvars` (docs/deploy.md).
project_id = "my-shop-project"
region     = "europe-west1"

# Images: Cloud Build tags them with the commit SHA. Or name one image per service in `images`.
image_tag = "0123abc"
# images = {
#   orders = "europe-west1-docker.pkg.dev/my-shop-project/shop/orders@sha256:..."
# }

alert_email = "oncall@example.com"

# Sizing: any field, for any service in topology.yaml (the rest keep the defaults and presets).
service_settings = {
  orders = {
    min_instances = 1
    max_instances = 20
  }
}

# Image renditions (docs/images.md): after a change, run the images backfill job for the images already uploaded.
# image_settings = {
#   IMAGE_FORMATS = "jpeg,webp,avif"
# }

# Opt-ins (both default to the safer choice).
public_orders_api = false
storage_trigger   = "notification"

# Keep on in production; turn off only for a throw-away project you want `terraform destroy` to empty.
deletion_protection = true
