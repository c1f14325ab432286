"""Vector search over documents, in one process on both backends: a paraphrase that
shares no word with its answer is found with an embedding model and not without one,
users stay apart, a failing embeddings endpoint leaves documents ready and full-text
search working, and each adapter's embeddings wire format and batching."""
from __future__ import annotations

import json
import re
import time

import pytest
import sqlalchemy

from services.config import ConfigError
from services.documents import search
from services.jobs import jobs
from services.providers import registry
from services.providers.embeddings import Embedder
from services.providers.http import pooled_session
from services.providers.ollama import OllamaProvider
from services.storage import DocumentChunk, database

from .fake_upstream import Reply
from .test_documents import _account, upload

# A bag-of-concepts embedding: synonyms share a dimension, so texts that say the same
# thing in other words point the same way; the last dimension keeps no vector at zero.
CONCEPTS = [("car", "cars", "automobile", "automobiles", "vehicle", "vehicles"),
            ("buy", "purchase", "purchasing", "acquire", "acquiring"),
            ("dog", "dogs", "puppy", "puppies", "canine"),
            ("walk", "walked", "walking", "stroll")]
DIMENSION = {word: at for at, words in enumerate(CONCEPTS) for word in words}
AUTOMOBILES = b"Acquiring an automobile: before purchasing a vehicle, compare three dealers."
DOGS = b"Our dog walking service: puppies are walked twice daily around the park."
PARAPHRASE = "Where should I buy a car?"  # not one word in common with AUTOMOBILES


def concept_vector(text: str) -> list[float]:
    vector = [0.0] * (len(CONCEPTS) + 1)
    for word in re.findall(r"\w+", text.lower()):
        if word in DIMENSION:
            vector[DIMENSION[word]] += 1.0
    vector[-1] = 0.1
    return vector


def openai_embeddings(payload: dict) -> bytes:
    """OpenAI's answer, its items in reverse order (each with its index), as servers may."""
    data = [{"object": "embedding", "index": i, "embedding": concept_vector(text)}
            for i, text in enumerate(payload["input"])]
    return json.dumps({"object": "list", "data": data[::-1]}).encode()


def embeddings_app(make_app, fake_openai, model: str, reply: Reply | None = None, **settings):
    fake_openai.script(model, reply or Reply(answer=openai_embeddings,
                                             content_type="application/json"))
    return make_app(SLUICE_EMBEDDING_MODEL=f"openai/{model}", **settings)


def test_a_paraphrase_is_found_with_embeddings_and_not_without(make_app, fake_openai):
    app = embeddings_app(make_app, fake_openai, "emb-paraphrase")
    client = app.test_client()
    for name, data in (("automobiles.txt", AUTOMOBILES), ("dogs.txt", DOGS)):
        assert upload(client, name, data, "text/plain").status_code == 201
    embedder = registry(app).embedder
    with database(app).transaction() as session:
        assert search(session, "usr_local", PARAPHRASE, None) == []  # full-text alone
        found = search(session, "usr_local", PARAPHRASE, None, embedder=embedder)
        both = search(session, "usr_local", "dealers walked", None, embedder=embedder)
    assert found[0].filename == "automobiles.txt" and found[0].score > 0
    assert {s.filename for s in both} == {"automobiles.txt", "dogs.txt"}
    requests = fake_openai.requests["emb-paraphrase"]
    assert {r["path"] for r in requests} == {"/v1/embeddings"}
    assert requests[-1]["json"] == {"model": "emb-paraphrase", "input": ["dealers walked"]}

    plain = make_app()  # no SLUICE_EMBEDDING_MODEL: no vectors stored or asked for
    assert registry(plain).embedder is None
    plain_client = plain.test_client()
    assert upload(plain_client, "automobiles.txt", AUTOMOBILES, "text/plain").status_code == 201
    with database(plain).transaction() as session:
        assert search(session, "usr_local", PARAPHRASE, None) == []
        assert session.query(DocumentChunk).filter(
            DocumentChunk.embedding_model.is_not(None)).count() == 0
    assert len(fake_openai.requests["emb-paraphrase"]) == len(requests)


def test_vector_search_keeps_users_apart(make_app, fake_openai):
    app = embeddings_app(make_app, fake_openai, "emb-users", SLUICE_AUTH="on")
    client = app.test_client()
    alice, _ = _account(app, "alice"), _account(app, "bob")
    response = upload(client, "automobiles.txt", AUTOMOBILES, "text/plain", headers=alice)
    document_id = response.get_json()["document"]["id"]
    embedder = registry(app).embedder
    with database(app).transaction() as session:
        ids = dict(session.execute(sqlalchemy.text("SELECT name, id FROM users")).all())
        assert search(session, ids["bob"], PARAPHRASE, None, embedder=embedder) == []
        assert search(session, ids["bob"], PARAPHRASE, [document_id], embedder=embedder) == []
        assert search(session, ids["alice"], PARAPHRASE, None, embedder=embedder)


def test_a_failing_embeddings_endpoint_leaves_full_text_search_working(make_app, fake_openai):
    down = Reply(b'{"error": {"message": "embeddings are down"}}', status=500,
                 content_type="application/json")
    app = embeddings_app(make_app, fake_openai, "emb-down", down)
    client = app.test_client()
    response = upload(client, "automobiles.txt", AUTOMOBILES, "text/plain")
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["document"]["status"] == "ready"
    with database(app).transaction() as session:
        assert [c.embedding for c in session.query(DocumentChunk)] == [None]
        found = search(session, "usr_local", "purchasing a vehicle", None,
                       embedder=registry(app).embedder)
        assert found and found[0].filename == "automobiles.txt"
        # Embedding the question fails too: the search is full-text only, not an error.
        assert search(session, "usr_local", PARAPHRASE, None,
                      embedder=registry(app).embedder) == []


def test_a_document_job_stores_embeddings(make_app, fake_openai):
    app = embeddings_app(make_app, fake_openai, "emb-job", SLUICE_DOCUMENT_INLINE_BYTES=20)
    jobs(app).start(workers=1)
    client = app.test_client()
    try:
        response = upload(client, "automobiles.txt", AUTOMOBILES, "text/plain")
        assert response.status_code == 202, response.get_json()
        job_id = response.get_json()["job"]["id"]
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            job = client.get(f"/api/v1/jobs/{job_id}").get_json()["job"]
            if job["status"] not in ("queued", "running"):
                break
            time.sleep(0.05)
        assert job["status"] == "complete"
    finally:
        jobs(app).stop()
    with database(app).transaction() as session:
        models = [c.embedding_model for c in session.query(DocumentChunk)]
        found = search(session, "usr_local", PARAPHRASE, None, embedder=registry(app).embedder)
    assert models == ["openai/emb-job"] and found[0].filename == "automobiles.txt"


def test_ollama_embeds_in_batches_in_order(fake_openai):
    def ollama_embed(payload: dict) -> bytes:
        return json.dumps({"model": payload["model"], "embeddings": [
            concept_vector(text) for text in payload["input"]]}).encode()
    fake_openai.script("emb-ollama", Reply(answer=ollama_embed, content_type="application/json"))
    embedder = Embedder("ollama/emb-ollama", "emb-ollama",
                        OllamaProvider(fake_openai.url, pooled_session(4)))
    texts = ["a car" if i % 2 else "a dog" for i in range(70)]
    vectors = embedder.embed(texts)
    assert vectors == [concept_vector(text) for text in texts]
    requests = fake_openai.requests["emb-ollama"]
    assert [len(r["json"]["input"]) for r in requests] == [64, 6]
    assert {r["path"] for r in requests} == {"/api/embed"}


@pytest.mark.parametrize("model", ["anthropic/claude-embed", "demo/echo", "no-slash"])
def test_an_embedding_model_that_cannot_embed_stops_startup(make_app, model):
    with pytest.raises(ConfigError, match="SLUICE_EMBEDDING_MODEL"):
        make_app(SLUICE_EMBEDDING_MODEL=model, ANTHROPIC_API_KEY="sk-ant-test")
