"""The orders service's code: the HTTP API, order requests, pricing, the order store and the saga."""
