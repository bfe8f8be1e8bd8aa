"""Custom checkov policies for this system (loaded with ``checkov --external-checks-dir terraform/checkov``)."""
