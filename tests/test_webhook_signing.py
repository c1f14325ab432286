"""Webhook signatures, checked by the Standard Webhooks reference library as a
receiver would check them."""
from __future__ import annotations

import json
import re
import time

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from services.webhooks import new_message_id, new_secret, signature_headers

BODY = json.dumps({"job": {"id": "job_1", "status": "complete", "result": "héllo"}}).encode()


def signed(*secrets: str, body: bytes = BODY) -> dict[str, str]:
    return signature_headers(list(secrets), new_message_id(), int(time.time()), body)


def test_a_receiver_verifies_the_delivery_with_its_secret():
    secret = new_secret()
    headers = signed(secret)
    assert Webhook(secret).verify(BODY, headers) == json.loads(BODY)
    assert headers["content-type"] == "application/json"
    assert re.fullmatch(r"v1,[A-Za-z0-9+/]{43}=", headers["webhook-signature"])


def test_during_a_rotation_either_secret_verifies_the_delivery():
    old, new = new_secret(), new_secret()
    headers = signed(new, old)
    assert len(headers["webhook-signature"].split(" ")) == 2
    for secret in (old, new):
        Webhook(secret).verify(BODY, headers)


def test_a_tampered_body_fails_verification():
    secret = new_secret()
    headers = signed(secret)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(BODY.replace(b"complete", b"failed"), headers)


def test_another_secret_fails_verification():
    headers = signed(new_secret())
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(BODY, headers)


def test_the_id_and_timestamp_are_signed_too():
    secret = new_secret()
    headers = signed(secret)
    for name, value in (("webhook-id", new_message_id()),
                        ("webhook-timestamp", str(int(time.time()) - 1))):
        with pytest.raises(WebhookVerificationError):
            Webhook(secret).verify(BODY, {**headers, name: value})


def test_secrets_and_message_ids_are_fresh_and_well_formed():
    secrets = {new_secret() for _ in range(50)}
    ids = {new_message_id() for _ in range(50)}
    assert len(secrets) == len(ids) == 50
    assert all(re.fullmatch(r"whsec_[A-Za-z0-9+/]{43}=", secret) for secret in secrets)
    assert all(re.fullmatch(r"msg_[A-Za-z0-9_-]{24}", message_id) for message_id in ids)


@pytest.mark.parametrize("secrets", [[], ["not-a-secret"], ["whsec_!!!"], ["whsec_"]])
def test_signing_without_a_usable_secret_is_refused(secrets):
    with pytest.raises(ValueError):
        signature_headers(secrets, new_message_id(), int(time.time()), BODY)


@pytest.mark.parametrize("message_id", ["", "msg 1", "msg\r\nx-evil: 1"])
def test_a_message_id_that_could_not_be_a_header_is_refused(message_id):
    with pytest.raises(ValueError):
        signature_headers([new_secret()], message_id, int(time.time()), BODY)
