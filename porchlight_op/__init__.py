"""porchlight_op: an OpenID Connect Provider on aiohttp and idpyoidc."""
