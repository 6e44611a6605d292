"""Who gets which channels: the one function to edit when you turn access on.

`POST /auth/token` asks it for the user the request is logged in as (through
the framework's own login), and mints a token with the grants it returns.
Patterns match channel names: `*` is any run of characters, and `{sub}`
stands for the user's own name, so `user:{sub}` is a channel of their own.
"""

from __future__ import annotations

from .realtime.auth import Grants


def grants_for(user: str | None) -> Grants | None:
    """The channels `user` may subscribe and publish to; None for no token at all."""
    if user is None:
        return None
    return Grants(
        user,
        subscribe=("demo*", "user:{sub}"),
        publish=("demo*", "user:{sub}"),
    )
