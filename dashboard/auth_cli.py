"""``run.py auth``: add and remove users and API tokens in an ``--auth-file``, for people and scripts.

    run.py auth add-user NAME --role ROLE --auth-file PATH    password from stdin, or asked twice on a terminal
    run.py auth add-token NAME --role ROLE --auth-file PATH   prints the new token once, on the last line
    run.py auth list --auth-file PATH
    run.py auth remove NAME --auth-file PATH

A running dashboard reads the file again as soon as it changes.
"""
from __future__ import annotations

import argparse
import getpass
import sys
from typing import Sequence, TextIO

from .auth import ROLES, AuthFile, AuthFileError


def main(argv: Sequence[str], stdin: TextIO | None = None, stdout: TextIO | None = None) -> int:
    stdin, stdout = stdin or sys.stdin, stdout or sys.stdout
    parser = argparse.ArgumentParser(prog="run.py auth", description="Users and API tokens of the dashboard.")
    commands = parser.add_subparsers(dest="command", required=True)
    for name, text in (("add-user", "add a user, or set an existing user's password and role"),
                       ("add-token", "add an API token (printed once), or replace one of that name")):
        command = commands.add_parser(name, help=text)
        command.add_argument("name")
        command.add_argument("--role", required=True, choices=ROLES)
        command.add_argument("--auth-file", required=True)
    listing = commands.add_parser("list", help="list users and tokens with their roles (never a secret)")
    listing.add_argument("--auth-file", required=True)
    remove = commands.add_parser("remove", help="remove a user or token")
    remove.add_argument("name")
    remove.add_argument("--auth-file", required=True)
    args = parser.parse_args(list(argv))
    try:
        if args.command == "list":
            auth = AuthFile(args.auth_file)
            for kind, entries in (("user", auth.users), ("token", auth.tokens)):
                for name, entry in sorted(entries.items()):
                    print(f"{kind}\t{name}\t{entry['role']}", file=stdout)
            return 0
        auth = AuthFile.create_or_open(args.auth_file)
        if args.command == "add-user":
            auth.add_user(args.name, args.role, _password(stdin))
            print(f"user {args.name} ({args.role}) written to {args.auth_file}", file=stdout)
        elif args.command == "add-token":
            token = auth.add_token(args.name, args.role)
            print(f"token {args.name} ({args.role}) written to {args.auth_file}; it is shown only now:", file=stdout)
            print(token, file=stdout)
        elif not auth.remove(args.name):
            print(f"error: no user or token named {args.name} in {args.auth_file}", file=sys.stderr)
            return 1
        else:
            print(f"{args.name} removed from {args.auth_file}", file=stdout)
    except (AuthFileError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def _password(stdin: TextIO) -> str:
    """The password: the first line of stdin when it is not a terminal, else asked twice."""
    if not stdin.isatty():
        return stdin.readline().rstrip("\r\n")
    first = getpass.getpass("Password: ")
    if first != getpass.getpass("Again: "):
        raise AuthFileError("the two passwords differ")
    return first
