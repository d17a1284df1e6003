"""The protocol layer: idpyoidc behind a facade, its configuration and state."""
