"""The console service's package: routes, pages, the topology view and the cross-site request guard."""
