"""Moving signed events between nodes (trust chain, scopes, bundles, HTTP)."""
