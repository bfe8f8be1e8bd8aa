# Terraform and provider versions. The providers are pinned to one major version; `terraform init` writes the
# exact versions to .terraform.lock.hcl (commit it with your state configuration).
terraform {
  required_version = ">= 1.5.0"

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = "~> 7.0"
    }
    google-beta = {
      source  = "hashicorp/google-beta"
      version = "~> 7.0"
    }
  }

  # Remote state: copy backend.tf.example to backend.tf and pass the bucket at init time
  # (see docs/deploy.md). Without it, state is local (terraform.tfstate, git-ignored).
}

provider "google" {
  project = var.project_id
  region  = var.region

  default_labels = var.labels
}

# Declared for resources that are only in the beta provider; nothing here needs it today.
provider "google-beta" {
  project = var.project_id
  region  = var.region

  default_labels = var.labels
}
