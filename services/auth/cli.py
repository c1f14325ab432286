"""The operator's commands: `flask --app wsgi users …` and `… keys …`."""
from __future__ import annotations

import sys

import click
from flask import Flask
from flask.cli import AppGroup

from ..errors import ApiError
from ..storage import database
from .accounts import create_user, find_user
from .keys import create_key, describe, list_keys, revoke_key

users = AppGroup("users", help="Manage users (who sign in on the page and own keys).")
keys = AppGroup("keys", help="Manage API keys (Authorization: Bearer sk-sluice-…).")


def _fail(exc: ApiError) -> click.ClickException:
    return click.ClickException(exc.message)


@users.command("create")
@click.argument("name")
@click.option("--password-stdin", is_flag=True,
              help="Read the password from standard input instead of prompting.")
def users_create(name: str, password_stdin: bool) -> None:
    """Create the user NAME."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    with database().sessions() as session:
        try:
            user = create_user(session, name, password)
        except ApiError as exc:
            raise _fail(exc) from None
        click.echo(f"created user {user.name} ({user.id})")


@keys.command("create")
@click.option("--user", "user_name", required=True, help="The user the key acts for.")
@click.option("--name", default=None, help="A label to tell the key apart.")
@click.option("--expires-in-days", type=float, default=None, help="Default: never.")
@click.option("--model", "models", multiple=True, help="Allow only this model (repeatable).")
@click.option("--rpm", type=click.IntRange(1), default=None,
              help="Requests a minute (default: SLUICE_KEY_RPM).")
@click.option("--max-streams", type=click.IntRange(1), default=None,
              help="Answers streaming at once (default: SLUICE_KEY_MAX_STREAMS).")
def keys_create(user_name: str, name: str | None, expires_in_days: float | None,
                models: tuple[str, ...], rpm: int | None, max_streams: int | None) -> None:
    """Create a key; prints its id, then its secret on a line of its own (shown once)."""
    with database().sessions() as session:
        user = find_user(session, user_name)
        if user is None:
            raise click.ClickException(f"there is no user {user_name!r}")
        key, secret = create_key(session, user.id, name, expires_in_days, list(models) or None,
                                 rpm, max_streams)
        click.echo(key.id)
        click.echo(secret)


@keys.command("list")
@click.option("--user", "user_name", default=None, help="Only this user's keys.")
def keys_list(user_name: str | None) -> None:
    """List keys (never their secrets)."""
    with database().sessions() as session:
        user_id = None
        if user_name is not None:
            user = find_user(session, user_name)
            if user is None:
                raise click.ClickException(f"there is no user {user_name!r}")
            user_id = user.id
        for key in list_keys(session, user_id):
            click.echo(describe(key))


@keys.command("revoke")
@click.argument("key_id")
def keys_revoke(key_id: str) -> None:
    """Revoke KEY_ID; it stops working at its next request."""
    with database().sessions() as session:
        try:
            key = revoke_key(session, key_id)
        except ApiError as exc:
            raise _fail(exc) from None
        click.echo(f"revoked {key.id}")


def init_cli(app: Flask) -> None:
    app.cli.add_command(users)
    app.cli.add_command(keys)
