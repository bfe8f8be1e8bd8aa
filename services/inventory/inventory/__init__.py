"""The inventory service's domain: reservation decisions over plain stock levels, no I/O."""
