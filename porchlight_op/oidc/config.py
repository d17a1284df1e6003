"""Build idpyoidc's configuration and Server from typed settings.

This is the only module that depends on the shape of idpyoidc's configuration
dictionary; everything else passes `Settings` and `ServerSecrets` around.
"""

from __future__ import annotations

import hashlib
from typing import Any

from cryptojwt import KeyJar
from cryptojwt.jwk.hmac import SYMKey
from cryptojwt.utils import b64e
from idpyoidc.server import Server

from ..settings import Settings
from .secrets import ServerSecrets

SCOPES = ("openid", "profile", "email", "address", "phone", "offline_access")
SIGNING_ALGS = ["RS256", "ES256"]
FERNET = "cryptojwt.jwe.fernet.FernetEncrypter"


def _s256(verifier: str) -> str:
    digest: bytes = b64e(hashlib.sha256(verifier.encode("ascii")).digest())
    return digest.decode("ascii")


def _fernet(key: bytes, salt: bytes | None = None) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"key": key}
    if salt is not None:
        kwargs["salt"] = salt
    return {"class": FERNET, "kwargs": kwargs}


def _usage_rules(settings: Settings) -> dict[str, Any]:
    return {
        "authorization_code": {
            "supports_minting": ["access_token", "refresh_token", "id_token"],
            "max_usage": 1,
            "expires_in": settings.code_lifetime,
        },
        "access_token": {"expires_in": settings.access_token_lifetime},
        "refresh_token": {
            "supports_minting": ["access_token", "refresh_token", "id_token"],
            "expires_in": settings.refresh_token_lifetime,
        },
    }


def _endpoints() -> dict[str, Any]:
    # Client authentication is done by porchlight before idpyoidc runs (constant
    # time comparison, RFC 6749 2.3.1 decoding); idpyoidc only reads the result.
    preverified = ["porchlight"]
    return {
        "provider_info": {
            "path": ".well-known/openid-configuration",
            "class": "idpyoidc.server.oidc.provider_config.ProviderConfiguration",
            "kwargs": {"client_authn_method": None},
        },
        "authorization": {
            "path": "authorization",
            "class": "idpyoidc.server.oidc.authorization.Authorization",
            "kwargs": {
                "client_authn_method": None,
                "claims_parameter_supported": False,
                "request_parameter_supported": False,
                "request_uri_parameter_supported": False,
                "response_types_supported": ["code"],
                "response_modes_supported": ["query"],
            },
        },
        "token": {
            "path": "token",
            "class": "idpyoidc.server.oidc.token.Token",
            "kwargs": {
                "client_authn_method": preverified,
                "revoke_refresh_on_issue": True,
                "grant_types_supported": {
                    "authorization_code": {
                        "class": "idpyoidc.server.oidc.token_helper"
                        ".access_token.AccessTokenHelper"
                    },
                    "refresh_token": {
                        "class": "idpyoidc.server.oidc.token_helper"
                        ".refresh_token.RefreshTokenHelper"
                    },
                },
            },
        },
        "userinfo": {
            "path": "userinfo",
            "class": "idpyoidc.server.oidc.userinfo.UserInfo",
            "kwargs": {"claim_types_supported": ["normal"]},
        },
    }


def build_conf(settings: Settings, secrets: ServerSecrets) -> dict[str, Any]:
    """Return idpyoidc's configuration dictionary for these settings."""
    return {
        "issuer": settings.issuer,
        "entity_id": settings.issuer,
        "httpc_params": {"verify": True, "timeout": 4},
        "symkey": secrets.symkey,
        "preference": {
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": SIGNING_ALGS,
            "userinfo_signing_alg_values_supported": SIGNING_ALGS,
            "scopes_supported": list(SCOPES),
            "grant_types_supported": ["authorization_code", "refresh_token"],
            "token_endpoint_auth_methods_supported": [
                "client_secret_basic",
                "client_secret_post",
                "none",
            ],
            "request_parameter_supported": False,
            "request_uri_parameter_supported": False,
            "claims_parameter_supported": False,
            "require_request_uri_registration": False,
        },
        "authz": {
            "class": "idpyoidc.server.authz.AuthzHandling",
            "kwargs": {
                "grant_config": {
                    "usage_rules": _usage_rules(settings),
                    "expires_in": settings.refresh_token_lifetime,
                }
            },
        },
        "client_authn_methods": {
            "porchlight": "porchlight_op.oidc.client_auth.PreverifiedClient"
        },
        "cookie_handler": {
            "class": "idpyoidc.server.cookie_handler.CookieHandler",
            "kwargs": {
                "sign_key": SYMKey(key=secrets.cookie_sign_key),
                "enc_key": SYMKey(key=secrets.cookie_enc_key),
                "name": {
                    "session": "oidc_op",
                    "register": "oidc_op_rp",
                    "session_management": "sman",
                },
            },
        },
        "claims_interface": {
            "class": "idpyoidc.server.session.claims.ClaimsInterface",
            "kwargs": {},
        },
        "endpoint": _endpoints(),
        "add_on": {
            "pkce": {
                "function": "idpyoidc.server.oauth2.add_on.pkce.add_support",
                "kwargs": {
                    # A dict, because add_support calls .keys() on it; plain is
                    # left out on purpose (RFC 9700 2.1.1).
                    "code_challenge_methods": {"S256": _s256},
                    "essential": False,
                },
            }
        },
        "session_params": {
            "encrypter": _fernet(secrets.session_key, secrets.session_salt),
        },
        "token_handler_args": {
            "code": {
                "kwargs": {
                    "lifetime": settings.code_lifetime,
                    "crypt_conf": _fernet(secrets.code_key),
                }
            },
            "token": {
                "class": "porchlight_op.oidc.access_tokens.AccessTokenJWT",
                "kwargs": {
                    "lifetime": settings.access_token_lifetime,
                    "alg": "ES256",
                    "add_claims_by_scope": False,
                    "aud": [],
                },
            },
            "refresh": {
                "kwargs": {
                    "lifetime": settings.refresh_token_lifetime,
                    "crypt_conf": _fernet(secrets.refresh_key),
                }
            },
            "id_token": {
                "class": "porchlight_op.oidc.id_token.PorchlightIDToken",
                "kwargs": {"lifetime": settings.id_token_lifetime},
            },
        },
        "userinfo": {
            "class": "porchlight_op.oidc.claims.PrefetchedUserInfo",
            "kwargs": {},
        },
        "template_dir": "templates",
    }


def build_keyjar(secrets: ServerSecrets) -> KeyJar:
    """Load the shared signing keys as the OP's own keys."""
    keyjar = KeyJar()
    keyjar.import_jwks(secrets.signing_jwks, "")
    return keyjar


def build_server(settings: Settings, secrets: ServerSecrets) -> Server:
    """Construct one idpyoidc Server; every worker builds an identical one."""
    keyjar = build_keyjar(secrets)
    server = Server(build_conf(settings, secrets), keyjar=keyjar, cwd="")
    keyjar.import_jwks(secrets.signing_jwks, settings.issuer)

    # `sub` is the user id itself (a random proquint), not a salted hash of it.
    server.context.session_manager.sub_func["public"] = _raw_sub
    return server


def _raw_sub(uid: str, **_: Any) -> str:
    return uid
