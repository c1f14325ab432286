"""Users' webhook signing secrets: created or rotated on request, shown only then.

After a rotation the previous secret still signs for a day (a second `v1,…`
signature), so a receiver can switch to the new one without rejecting deliveries.
"""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy.orm import Session

from ..storage.models import utcnow
from ..storage.work import WebhookSecret
from ..webhooks import new_secret

OVERLAP = timedelta(days=1)


def rotate_secret(session: Session, user_id: str) -> str:
    """A new signing secret for the user (the first one, or one replacing the last)."""
    secret = new_secret()
    row = session.get(WebhookSecret, user_id)
    if row is None:
        session.add(WebhookSecret(user_id=user_id, secret=secret, rotated_at=utcnow()))
    else:
        row.previous_secret, row.secret, row.rotated_at = row.secret, secret, utcnow()
    session.commit()
    return secret


def signing_secrets(session: Session, user_id: str) -> list[str]:
    """The secrets a delivery is signed with now. A user who never asked for one gets one
    made quietly (their deliveries are signed all the same; rotating shows a new one)."""
    row = session.get(WebhookSecret, user_id)
    if row is None:
        row = WebhookSecret(user_id=user_id, secret=new_secret(), rotated_at=utcnow())
        session.add(row)
        session.flush()
    secrets = [row.secret]
    if row.previous_secret and utcnow() - row.rotated_at < OVERLAP:
        secrets.append(row.previous_secret)
    return secrets
