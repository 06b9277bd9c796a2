"""Federation between nodes: the peers this node knows and the signed directory each node
publishes of its participants and their public keys (docs/api.md, "Federation")."""
