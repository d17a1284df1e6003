"""The `invite` and `init-admin` commands of the porchlight-op command line."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from porchlight_op.cli import CommandError, _emit, _run, _timestamp, read_password
from porchlight_op.settings import Settings
from porchlight_op.store.connection import RedisClient

DEFAULT_EXPIRY = "7d"


def register_link(settings: Settings, token: str) -> str:
    """Return the URL at which an invitation's token is redeemed."""
    from porchlight_op.store.invitations import register_url

    return register_url(settings.issuer, token)


def _invitation_data(invitation: Any) -> dict[str, Any]:
    """Describe an invitation without its token."""
    return {
        "id": invitation.id,
        "email": invitation.email,
        "admin": invitation.admin,
        "username": invitation.username,
        "sub": invitation.sub,
        "state": invitation.state,
        "created_at": _timestamp(invitation.created_at),
        "expires_at": _timestamp(invitation.expires_at),
    }


def _lifetime(text: str) -> int:
    from porchlight_op.store.invitations import InvalidDuration, parse_duration

    try:
        return parse_duration(text)
    except InvalidDuration as err:
        raise CommandError(f"--expires: {err}", 2) from None


def _check_email(email: str | None) -> None:
    from porchlight_op.store.invitations import validate_email

    if email is None:
        return
    try:
        validate_email(email)
    except ValueError as err:
        raise CommandError(str(err), 2) from None


def _create_invitation(
    settings: Settings,
    lifetime: int,
    email: str | None = None,
    admin: bool = False,
    username: str | None = None,
) -> tuple[str, Any]:
    from porchlight_op.store.invitations import InvitationStore

    async def create(client: RedisClient) -> tuple[str, Any]:
        store = InvitationStore(client)
        return await store.create(lifetime, email, admin, username)

    return _run(settings, create)


def _emit_link(args: argparse.Namespace, link: str, invitation: Any) -> None:
    data = {"link": link, **_invitation_data(invitation)}
    lines = [
        link,
        f"The link works once, until {data['expires_at']}, and is shown only now.",
    ]
    _emit(args, data, lines)


def cmd_invite_create(args: argparse.Namespace, settings: Settings) -> int:
    """Create a one-time invitation and print its registration link."""
    lifetime = _lifetime(args.expires)
    _check_email(args.email)
    token, invitation = _create_invitation(
        settings, lifetime, email=args.email, admin=args.admin
    )
    _emit_link(args, register_link(settings, token), invitation)
    return 0


def cmd_invite_list(args: argparse.Namespace, settings: Settings) -> int:
    """List unexpired invitations; tokens are never stored, so never shown."""
    from porchlight_op.store.invitations import InvitationStore

    async def load(client: RedisClient) -> list[Any]:
        return await InvitationStore(client).list()

    rows = [_invitation_data(item) for item in _run(settings, load)]
    lines = [
        f"{row['id']}\t{row['state']}\t{row['email'] or '-'}\t"
        f"{'admin' if row['admin'] else '-'}\texpires {row['expires_at']}"
        for row in rows
    ]
    _emit(args, rows, lines or ["no invitations"])
    return 0


def cmd_invite_revoke(args: argparse.Namespace, settings: Settings) -> int:
    """Revoke a pending invitation so its link stops working."""
    from porchlight_op.store.invitations import PENDING, AmbiguousId, InvitationStore

    async def revoke(client: RedisClient) -> Any:
        try:
            return await InvitationStore(client).revoke(args.id)
        except AmbiguousId as err:
            raise CommandError(str(err)) from None

    before = _run(settings, revoke)
    if before is None:
        raise CommandError(f"invitation {args.id!r} not found or expired")
    if before.state != PENDING:
        raise CommandError(f"invitation {before.id} is {before.state} already")
    _emit(args, {"revoked": before.id}, [f"revoked invitation {before.id}"])
    return 0


def cmd_init_admin(args: argparse.Namespace, settings: Settings) -> int:
    """Create the first administrator, or print an invitation link for one."""
    from porchlight_op.accounts.service import Accounts, normalize_username
    from porchlight_op.models import ADMIN_GROUP
    from porchlight_op.store.users import UsernameTaken

    try:
        normalize_username(args.username)
    except ValueError as err:
        raise CommandError(str(err), 2) from None
    if not args.password_stdin:
        return _invite_admin(args, settings)
    password = read_password(sys.stdin)

    async def add(client: RedisClient) -> Any:
        try:
            return await Accounts(client, settings).create_user(
                args.username, password, groups=(ADMIN_GROUP,)
            )
        except UsernameTaken:
            raise CommandError(f"user {args.username!r} already exists") from None
        except ValueError as err:
            raise CommandError(str(err)) from None

    user = _run(settings, add)
    data = {"sub": user.sub, "username": user.username, "groups": list(user.groups)}
    _emit(args, data, [f"created administrator {user.username} ({user.sub})"])
    return 0


def _invite_admin(args: argparse.Namespace, settings: Settings) -> int:
    from porchlight_op.accounts.service import Accounts

    async def exists(client: RedisClient) -> bool:
        return await Accounts(client, settings).find(args.username) is not None

    if _run(settings, exists):
        raise CommandError(f"user {args.username!r} already exists")
    token, invitation = _create_invitation(
        settings, _lifetime(args.expires), admin=True, username=args.username
    )
    _emit_link(args, register_link(settings, token), invitation)
    return 0


def _add_expires(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--expires",
        metavar="DURATION",
        default=DEFAULT_EXPIRY,
        help="how long the link stays valid: a number with s, m, h or d "
        "(default: %(default)s)",
    )


def add_invite_commands(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add the `invite` and `init-admin` commands to the parser."""
    invite = commands.add_parser("invite", help="manage one-time invitation links")
    actions = invite.add_subparsers(dest="action", required=True, metavar="ACTION")

    create = actions.add_parser(
        "create", parents=[common], help="create an invitation, print its link"
    )
    create.add_argument(
        "--email",
        metavar="E",
        help="bind the invitation to this address; the account gets it as its "
        "email claim, not verified",
    )
    create.add_argument(
        "--admin", action="store_true", help="the account joins the admin group"
    )
    _add_expires(create)
    create.set_defaults(handler=cmd_invite_create)

    listing = actions.add_parser(
        "list", parents=[common], help="list unexpired invitations (never tokens)"
    )
    listing.set_defaults(handler=cmd_invite_list)

    revoke = actions.add_parser(
        "revoke", parents=[common], help="revoke an invitation by its id"
    )
    revoke.add_argument("id", metavar="ID", help="the id, or a unique prefix of it")
    revoke.set_defaults(handler=cmd_invite_revoke)

    init_admin = commands.add_parser(
        "init-admin",
        parents=[common],
        help="create the first administrator, or print an invitation link for one",
    )
    init_admin.add_argument("username", metavar="USERNAME")
    init_admin.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from the first line of stdin and create the "
        "account now; without it a one-time link for USERNAME is printed",
    )
    _add_expires(init_admin)
    init_admin.set_defaults(handler=cmd_init_admin)
