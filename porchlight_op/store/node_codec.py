"""Compact storage form of idpyoidc session nodes, the `d` part of each node.

A node is stored as one marker byte followed by its canonical JSON compressed
with a preset dictionary. The dictionary contains the field names and fixed
values every idpyoidc 5.0 user, client and grant node repeats: class paths,
usage rules, the null userinfo claims. So a grant of about 3.2 KB of JSON
takes several hundred bytes.

Nodes are written as LZ4 blocks (marker 2). LZ4 took a fifth of the CPU of
DEFLATE per grant and stores about 90 bytes more; DEFLATE (marker 1), which
earlier versions wrote, and plain JSON, which starts with "{", are still read.

Only store/sessions.py calls this module, so every caller above the store
gets JSON bytes.
"""

from __future__ import annotations

import zlib

import lz4.block  # type: ignore[import-untyped]

# Marker bytes of the formats "DEFLATE with _ZDICT_1" and "LZ4 block with
# _ZDICT_1". Never change the dictionary below: data written with it must stay
# readable. A new dictionary needs new markers.
MARKER_1 = b"\x01"
MARKER_2 = b"\x02"
PLAIN_JSON = b"{"

# DEFLATE settings of marker 1, kept to document what earlier versions wrote.
# Level 1 is the fastest, and larger levels save only tens of bytes on a node.
LEVEL = 1
# An 8 KiB window fits the dictionary and what follows it in a typical grant.
# Decompression always uses the largest window, which reads any smaller one.
WINDOW_BITS = 13
MEMORY_LEVEL = 8

_ZDICT_1 = (
    b'{"extra_args":{},"id":"","revoked":false,"type":"UserSessionInfo"}{'
    b'"extra_args":{},"id":"","revoked":false,"type":"ClientSessionInfo"}{'
    b'"authentication_event":{"idpyoidc.server.authn_event.AuthnEvent":{'
    b'"amr":["pwd"],'
    b'"authn_info":"urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport",'
    b'"authn_time":0,"porchlight_sid":"","uid":"","valid_until":0}},'
    b'"authorization_request":{"idpyoidc.message.oidc.AuthorizationRequest":{'
    b'"client_id":"","code_challenge":"","code_challenge_method":"S256",'
    b'"nonce":"","redirect_uri":"https://","response_type":"code",'
    b'"scope":"openid profile email offline_access","state":""}},"claims":{'
    b'"access_token":{},"id_token":{},"introspection":{},"userinfo":{'
    b'"birthdate":null,"email":null,"email_verified":null,"family_name":null,'
    b'"gender":null,"given_name":null,"locale":null,"middle_name":null,'
    b'"name":null,"nickname":null,"picture":null,"preferred_username":null,'
    b'"profile":null,"sub":null,"updated_at":null,"website":null,'
    b'"zoneinfo":null}},"expires_at":0,"extra":{},"issued_at":0,"issued_token":[{'
    b'"idpyoidc.server.session.token.AuthorizationCode":{"claims":{},'
    b'"expires_at":0,"id":"","issued_at":0,"name":"AuthorizationCode",'
    b'"not_before":0,"resources":[],"revoked":false,"scope":["openid","profile",'
    b'"email","offline_access"],"token_class":"authorization_code","usage_rules":{'
    b'"expires_in":600,"max_usage":1,"supports_minting":["access_token",'
    b'"refresh_token","id_token"]},"used":0,"value":"sha256:"}},{'
    b'"idpyoidc.server.session.token.AccessToken":{"based_on":"sha256:","claims":{'
    b'},"expires_at":0,"id":"","issued_at":0,"name":"AccessToken","not_before":0,'
    b'"resources":[],"revoked":false,"scope":["openid","profile","email",'
    b'"offline_access"],"token_class":"access_token","token_type":"Bearer",'
    b'"usage_rules":{"expires_in":3600},"used":0,"value":"sha256:"}},{'
    b'"idpyoidc.server.session.token.RefreshToken":{"based_on":"sha256:",'
    b'"claims":{},"expires_at":0,"id":"","issued_at":0,"name":"RefreshToken",'
    b'"not_before":0,"resources":[],"revoked":false,"scope":["openid","profile",'
    b'"email","offline_access"],"token_class":"refresh_token","usage_rules":{'
    b'"expires_in":2592000,"supports_minting":["access_token","refresh_token",'
    b'"id_token"]},"used":0,"value":"sha256:"}}],"not_before":0,"resources":[""],'
    b'"revoked":false,"scope":["openid","profile","email","offline_access"],'
    b'"sub":"","token_map":{'
    b'"access_token":"idpyoidc.server.session.token.AccessToken",'
    b'"authorization_code":"idpyoidc.server.session.token.AuthorizationCode",'
    b'"id_token":"idpyoidc.server.session.token.IDToken",'
    b'"refresh_token":"idpyoidc.server.session.token.RefreshToken"},'
    b'"usage_rules":{"access_token":{"expires_in":3600},"authorization_code":{'
    b'"expires_in":600,"max_usage":1,"supports_minting":["access_token",'
    b'"refresh_token","id_token"]},"refresh_token":{"expires_in":2592000,'
    b'"supports_minting":["access_token","refresh_token","id_token"]}},"used":0}'
)

# The largest node LZ4 is asked to restore. A block's size header must not exceed it.
MAX_NODE_BYTES = 16 * 1024 * 1024


class UnknownNodeFormat(ValueError):
    """A stored node starts with a byte that no known format uses."""


def encode(document: bytes) -> bytes:
    """Return the storage form of a node's canonical JSON."""
    packed = MARKER_2 + lz4.block.compress(document, dict=_ZDICT_1)
    # A node unlike the dictionary could grow; plain JSON is readable too.
    return packed if len(packed) < len(document) else document


def decode(stored: bytes) -> bytes:
    """Return the JSON of a stored node, in any storage form."""
    marker = stored[:1]
    if marker == PLAIN_JSON:
        return stored
    if marker == MARKER_2:
        return _lz4_decode(stored[1:])
    if marker == MARKER_1:
        return _deflate_decode(stored[1:])
    raise UnknownNodeFormat(f"stored session node has unknown format {marker!r}")


def _lz4_decode(block: bytes) -> bytes:
    # The block starts with the original size as 4 little-endian bytes.
    if len(block) < 4 or int.from_bytes(block[:4], "little") > MAX_NODE_BYTES:
        raise UnknownNodeFormat("stored session node has an invalid size")
    try:
        document: bytes = lz4.block.decompress(block, dict=_ZDICT_1)
    except lz4.block.LZ4BlockError as err:
        raise UnknownNodeFormat("stored session node is truncated") from err
    return document


def _deflate_decode(stream: bytes) -> bytes:
    decompressor = zlib.decompressobj(-zlib.MAX_WBITS, _ZDICT_1)
    document = decompressor.decompress(stream) + decompressor.flush()
    if not decompressor.eof:
        raise UnknownNodeFormat("stored session node is truncated")
    return document


def deflate_encode(document: bytes) -> bytes:
    """Return the marker-1 form that earlier versions wrote, for tests."""
    compressor = zlib.compressobj(
        LEVEL,
        zlib.DEFLATED,
        -WINDOW_BITS,
        MEMORY_LEVEL,
        zlib.Z_DEFAULT_STRATEGY,
        _ZDICT_1,
    )
    return MARKER_1 + compressor.compress(document) + compressor.flush()
