# Firestore (native mode): the database, TTL policies on the collections eventkit expires, and the composite
# indexes the outbox sweeper's and the console's queries need.

resource "google_firestore_database" "default" {
  name                              = "(default)"
  location_id                       = coalesce(var.firestore_location, var.region)
  type                              = "FIRESTORE_NATIVE"
  concurrency_mode                  = "PESSIMISTIC"
  point_in_time_recovery_enablement = "POINT_IN_TIME_RECOVERY_ENABLED"
  delete_protection_state           = var.deletion_protection ? "DELETE_PROTECTION_ENABLED" : "DELETE_PROTECTION_DISABLED"
  deletion_policy                   = var.deletion_protection ? "ABANDON" : "DELETE"

  depends_on = [google_project_service.enabled]
}

locals {
  # collection group => timestamp field that a TTL policy expires documents by (eventkit writes these fields:
  # idempotency ledger entries, sent outbox entries, delivery notes and delivery counts carry expires_at).
  firestore_ttl_fields = {
    idempotency     = "expires_at"
    outbox          = "expires_at"
    deliveries      = "expires_at" # the deliveries noted under each subject (eventkit/delivery_note.py)
    delivery_counts = "expires_at" # deliveries processed per subscription and window (eventkit/delivery_counts.py)
  }
}

resource "google_firestore_field" "ttl" {
  for_each = local.firestore_ttl_fields

  database   = google_firestore_database.default.name
  collection = each.key
  field      = each.value

  # A TTL field is a monotonically growing timestamp: no single-field indexes (they would hotspot), none needed.
  index_config {}

  ttl_config {}
}

# The outbox sweeper, once per shard: where(shard == S).where(sent == false).where(created_at <= cutoff)
# .order_by(created_at) (eventkit/outbox.py). The random shard in front spreads the growing created_at over
# OUTBOX_SHARDS (16) index ranges, each good for 500 writes a second (Firestore's "sharded timestamps").
# Timestamps that only ever grow, written on every delivery, that no query asks for: not indexed. Firestore takes
# at most 500 writes a second into a collection whose documents carry sequential values in an indexed field (and
# every field is indexed unless exempted), so the ledger's completion time alone would cap the shop at about 60
# orders a second (8 ledger entries per order; docs/capacity.md).
locals {
  firestore_unindexed_fields = {
    "idempotency/completed_at"     = { collection = "idempotency", field = "completed_at" }
    "idempotency/lease_expires_at" = { collection = "idempotency", field = "lease_expires_at" }
    # The deliveries noted under each subject (eventkit/delivery_note.py): listed whole, never queried by time.
    "deliveries/completed_at" = { collection = "deliveries", field = "completed_at" }
    "outbox/created_at"       = { collection = "outbox", field = "created_at" } # the sweeper's composite index stays
    "outbox/sent_at"          = { collection = "outbox", field = "sent_at" }
    "outbox/shard"            = { collection = "outbox", field = "shard" } # only the composite index asks for it
  }
}

resource "google_firestore_field" "unindexed" {
  for_each = local.firestore_unindexed_fields

  database   = google_firestore_database.default.name
  collection = each.value.collection
  field      = each.value.field

  index_config {}
}

resource "google_firestore_index" "outbox_unsent" {
  database    = google_firestore_database.default.name
  collection  = "outbox"
  query_scope = "COLLECTION"

  fields {
    field_path = "shard"
    order      = "ASCENDING"
  }
  fields {
    field_path = "sent"
    order      = "ASCENDING"
  }
  fields {
    field_path = "created_at"
    order      = "ASCENDING"
  }
}

# The console's list of failure records: where(status == S).order_by(last_seen, DESC), a page at a time
# (eventkit/failure_records.py Records.page).
resource "google_firestore_index" "failures_by_status" {
  database    = google_firestore_database.default.name
  collection  = "failures"
  query_scope = "COLLECTION"

  fields {
    field_path = "status"
    order      = "ASCENDING"
  }
  fields {
    field_path = "last_seen"
    order      = "DESCENDING"
  }
}

# The console's list of orders: where(status == S).order_by(created_at, DESC), a page at a time
# (services/console/console/order_records.py Orders.page; every status: created_at's own index).
resource "google_firestore_index" "orders_by_status" {
  database    = google_firestore_database.default.name
  collection  = "orders"
  query_scope = "COLLECTION"

  fields {
    field_path = "status"
    order      = "ASCENDING"
  }
  fields {
    field_path = "created_at"
    order      = "DESCENDING"
  }
}
