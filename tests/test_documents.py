"""Documents in one process, on both backends: each format read, retrieval that finds
the chunk holding the answer (recall@3 over a fixture corpus), users kept apart,
delete, hostile PDFs refused quickly, size and type limits, the large-file job."""
from __future__ import annotations

import codecs
from concurrent.futures import ThreadPoolExecutor
import io
import time
import zlib
from pathlib import Path

import pytest
import requests
import sqlalchemy
from pypdf import PdfWriter
from pypdf.generic import DecodedStreamObject, DictionaryObject, NameObject, StreamObject

from services.auth.accounts import create_user
from services.auth.keys import create_key
from services.documents import search, sources_prompt
from services.documents.chunking import chunk_text
from services.jobs import jobs
from services.storage import DocumentChunk, database

FIXTURES = Path(__file__).with_name("fixtures") / "documents"
# A question, and words only the chunk that answers it holds.
QUESTIONS = [
    ("How many days of paid annual leave do employees get?", "27 days"),
    ("When are travel expenses reimbursed?", "within 14 days"),
    ("What is the daily meal allowance when travelling?", "45 euros"),
    ("Who hands out laptops to new staff?", "IT desk"),
    ("How long is parental leave?", "16 weeks"),
    ("What time does the Rotterdam office open?", "7:30"),
    ("Where do visitors park their car?", "underground garage"),
    ("Which day is vegetarian lunch served in the canteen?", "Thursday"),
    ("How long must passwords be?", "14 characters"),
    ("How do I report a security incident?", "pager number"),
    ("What colour lanyard do visitors wear?", "red lanyard"),
]


def multipart(field: str, name: str, data: bytes, content_type: str) -> tuple[bytes, str]:
    """A multipart body of one file, encoded here: the test client's own encoder leaves a
    temporary file open, which `filterwarnings = error` would fail on."""
    boundary = "sluice-test-boundary-7f3a"
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; "
            f"filename=\"{name}\"\r\nContent-Type: {content_type}\r\n\r\n").encode()
    return head + data + f"\r\n--{boundary}--\r\n".encode(), \
        f"multipart/form-data; boundary={boundary}"


def upload(client, name: str, data: bytes, content_type: str = "", headers=None,
           field: str = "file"):
    body, mimetype = multipart(field, name, data, content_type or "application/octet-stream")
    return client.post("/api/v1/documents", headers=headers or {}, data=body,
                       content_type=mimetype)


def upload_fixture(client, name: str, headers=None) -> dict:
    response = upload(client, name, (FIXTURES / name).read_bytes(), headers=headers)
    assert response.status_code == 201, response.get_json()
    return response.get_json()["document"]


def _helvetica_page(writer: PdfWriter):
    """A new page of `writer` with Helvetica as its font /F1."""
    page = writer.add_blank_page(612, 792)
    font = DictionaryObject({NameObject("/Type"): NameObject("/Font"),
                             NameObject("/Subtype"): NameObject("/Type1"),
                             NameObject("/BaseFont"): NameObject("/Helvetica")})
    page[NameObject("/Resources")] = DictionaryObject({NameObject("/Font"): DictionaryObject(
        {NameObject("/F1"): writer._add_object(font)})})
    return page


def pdf_bytes(*pages: str) -> bytes:
    """A small valid PDF whose pages show `pages` in Helvetica."""
    writer = PdfWriter()
    for text in pages:
        page = _helvetica_page(writer)
        content = DecodedStreamObject()
        content.set_data(f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode("latin-1"))
        page[NameObject("/Contents")] = writer._add_object(content)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def chunks_of(app, document_id: str) -> list[str]:
    with database(app).transaction() as session:
        return [c.text for c in session.query(DocumentChunk)
                .filter_by(document_id=document_id).order_by(DocumentChunk.position)]


@pytest.mark.parametrize(("name", "present", "absent"), [
    ("handbook.md", ["27 days", "Holidays"], []),
    ("office.html", ["Rotterdam office opens at 7:30", "# Parking"],
     ["do-not-index-this-script", "color: red"]),
    ("security.txt", ["14 characters"], []),
])
def test_each_text_format_is_read(app, client, name, present, absent):
    document = upload_fixture(client, name)
    assert document["status"] == "ready" and document["chunk_count"] >= 1
    text = "\n".join(chunks_of(app, document["id"]))
    for words in present:
        assert words in text
    for words in absent:
        assert words not in text


@pytest.mark.parametrize("data", [
    "Отпуск: 28 дней. 休暇は二十八日です。".encode("utf-16"),  # Notepad's "Unicode"
    codecs.BOM_UTF16_BE + "Отпуск: 28 дней. 休暇は二十八日です。".encode("utf-16-be"),
    "Отпуск: 28 дней. 休暇は二十八日です。".encode("utf-32"),
    "\ufeffОтпуск: 28 дней. 休暇は二十八日です。".encode("utf-8"),
], ids=["utf-16-le", "utf-16-be", "utf-32", "utf-8-bom"])
def test_text_in_the_encoding_its_byte_order_mark_names_is_read(app, client, data):
    response = upload(client, "notes.txt", data)
    assert response.status_code == 201, response.get_json()
    assert chunks_of(app, response.get_json()["document"]["id"]) == [
        "Отпуск: 28 дней. 休暇は二十八日です。"]


def test_other_text_is_read_as_windows_1252_and_binary_data_is_refused(app, client):
    legacy = upload(client, "menu.txt", "Crème brûlée — 8 €".encode("cp1252"))
    assert legacy.status_code == 201
    assert chunks_of(app, legacy.get_json()["document"]["id"]) == ["Crème brûlée — 8 €"]
    coloured = upload(client, "build.txt", b"\x1b[31mFAILED\x1b[0m step 3\n" * 20)
    assert coloured.status_code == 201  # a log's colour codes are not binary
    for name, data in (("photo.txt", bytes(range(256)) * 40),
                       ("archive.md", b"PK\x03\x04" + bytes(range(32)) * 100)):
        refused = upload(client, name, data)
        assert refused.status_code == 400, name
        assert refused.get_json()["error"] == {
            "code": "unreadable_document",
            "message": "The file is not text (it holds binary data); upload text, Markdown, "
                       "HTML or PDF."}
    listed = client.get("/api/v1/documents").get_json()["documents"]
    assert sorted(d["filename"] for d in listed) == ["build.txt", "menu.txt"]


def test_html_blocks_and_table_cells_part_words(app, client):
    """Words on either side of a block or between cells stay words: a table written
    without whitespace is still searchable word by word."""
    page = (b"<span>alpha</span><p>bravo</p>hotel<div>india</div>"
            b"<table><tr><td>charlie</td><td>delta</td></tr></table>a<b>b</b>c")
    document = upload(client, "page.html", page).get_json()["document"]
    assert chunks_of(app, document["id"]) == ["alpha\n\nbravo\n\nhotel\n\nindia\n\n"
                                              "charlie delta\n\nabc"]
    with database(app).transaction() as session:
        assert [s.filename for s in search(session, "usr_local", "delta", None)] == ["page.html"]


def test_a_pdf_is_read(app, client):
    response = upload(client, "guide.pdf", pdf_bytes("The vault code is 4711.", "Page two."))
    assert response.status_code == 201, response.get_json()
    document = response.get_json()["document"]
    assert document["content_type"] == "application/pdf" and document["status"] == "ready"
    assert "vault code is 4711" in " ".join(chunks_of(app, document["id"]))


def test_chunks_overlap_know_their_offset_and_carry_their_heading():
    text = "# Title\n\n" + "\n\n".join(f"Paragraph {i} says something about topic {i}. " * 6
                                       for i in range(12))
    chunks = chunk_text(text, [(0, "Title")])
    assert len(chunks) > 3 and all(len(c.text) <= 900 for c in chunks)
    for chunk in chunks[1:]:
        assert chunk.text.startswith("Title\n")
        body = chunk.text.removeprefix("Title\n")
        assert text[chunk.char_start:].startswith(body)
    assert chunks[1].char_start < chunks[0].char_start + len(chunks[0].text)  # overlap


def test_retrieval_finds_the_answering_chunk(app, client, backend):
    for name in ("handbook.md", "office.html", "security.txt"):
        upload_fixture(client, name)
    hits = 0
    with database(app).transaction() as session:
        for question, answer in QUESTIONS:
            found = search(session, "usr_local", question, None, limit=3)
            hits += any(answer in source.text for source in found)
    recall = hits / len(QUESTIONS)
    print(f"recall@3 = {recall:.2f} ({backend.name})")
    assert recall >= 0.8
    with database(app).transaction() as session:
        assert search(session, "usr_local", "?!... ()*\"'", None) == []
        search(session, "usr_local", "NEAR(\" OR * AND -x : ^ \\\"", None)  # no error
        found = search(session, "usr_local", "annual leave", None)
    prompt = sources_prompt(found, 10_000, lambda s: len(s) // 4)
    assert prompt.text.count("\n[1] ") == 1 and "27 days" in prompt.text
    assert found[0].to_event().keys() == {"document_id", "filename", "chunk", "score", "excerpt"}
    small = sources_prompt(found, 120, lambda s: len(s) // 4)
    assert len(small.sources) <= 1 and len(small.text) // 4 <= 120


def test_a_thread_attaches_documents_and_search_keeps_to_them(app, client):
    handbook = upload_fixture(client, "handbook.md")
    office = upload_fixture(client, "office.html")
    thread = client.post("/api/v1/threads", json={"documents": [office["id"]]}).get_json()
    assert thread["thread"]["documents"] == [office["id"]]
    thread_id = thread["thread"]["id"]
    with database(app).transaction() as session:
        assert all(s.document_id == office["id"] for s in
                   search(session, "usr_local", "annual leave Rotterdam", [office["id"]]))
    patched = client.patch(f"/api/v1/threads/{thread_id}",
                           json={"documents": [handbook["id"]], "system": "Be brief."})
    assert patched.status_code == 200
    assert patched.get_json()["thread"]["documents"] == [handbook["id"]]
    assert patched.get_json()["thread"]["system"] == "Be brief."
    renamed = client.patch(f"/api/v1/threads/{thread_id}", json={"title": " New "})
    assert renamed.get_json()["thread"]["title"] == "New"
    assert client.patch(f"/api/v1/threads/{thread_id}", json={}).status_code == 400
    cleared = client.patch(f"/api/v1/threads/{thread_id}", json={"documents": None})
    assert cleared.status_code == 200 and cleared.get_json()["thread"]["documents"] == []
    missing = client.post("/api/v1/threads", json={"documents": ["doc_nobody"]})
    assert missing.status_code == 404
    assert missing.get_json()["error"]["code"] == "document_not_found"


def _account(app, name: str) -> dict[str, str]:
    with database(app).transaction() as session:
        user = create_user(session, name, "correct horse battery staple")
        user_id = user.id
    with database(app).transaction() as session:
        _, secret = create_key(session, user_id)
    return {"Authorization": f"Bearer {secret}"}


def test_users_never_see_each_others_documents(make_app):
    app = make_app(SLUICE_AUTH="on")
    client = app.test_client()
    alice, bob = _account(app, "alice"), _account(app, "bob")
    document = upload_fixture(client, "handbook.md", headers=alice)
    path = f"/api/v1/documents/{document['id']}"
    assert client.get("/api/v1/documents", headers=bob).get_json()["documents"] == []
    assert client.get(path, headers=bob).status_code == 404
    assert client.delete(path, headers=bob).status_code == 404
    refused = client.post("/api/v1/threads", headers=bob, json={"documents": [document["id"]]})
    assert refused.status_code == 404
    with database(app).transaction() as session:
        bob_id = session.execute(sqlalchemy.text(
            "SELECT id FROM users WHERE name = 'bob'")).scalar_one()
        assert search(session, bob_id, "annual leave", None) == []
        assert search(session, bob_id, "annual leave", [document["id"]]) == []
    assert client.get(path, headers=alice).status_code == 200


def test_one_users_ranking_does_not_move_with_anothers_documents(make_app):
    """Scores come from the searching user's own chunks: another user's files full of
    the same word change nothing (with FTS5's index-wide bm25, Bob's chunk fell to a
    score of 0.0, which told him Alice's files held the word)."""
    app = make_app(SLUICE_AUTH="on")
    client = app.test_client()
    alice, bob = _account(app, "alice"), _account(app, "bob")
    for name, words in (("okapi.md", "The okapi lives in the Ituri forest."),
                        ("zebra.md", "The zebra lives on the plains; an okapi is no zebra.")):
        assert upload(client, name, words.encode(), headers=bob).status_code == 201
    with database(app).transaction() as session:
        bob_id = session.execute(sqlalchemy.text(
            "SELECT id FROM users WHERE name = 'bob'")).scalar_one()

    def ranked() -> list[tuple[str, float]]:
        with database(app).transaction() as session:
            return [(s.filename, s.to_event()["score"])
                    for s in search(session, bob_id, "where does the okapi live", None)]
    before = ranked()
    assert [name for name, _ in before] == ["okapi.md", "zebra.md"]
    assert all(score > 0 for _, score in before)
    for n in range(8):
        upload(client, f"notes-{n}.md", b"okapi okapi okapi lives " * 20, headers=alice)
    assert ranked() == before


def test_the_best_chunk_is_found_when_a_word_is_in_more_chunks_than_are_scored(
        app, client, monkeypatch):
    """Past the chunks scored per word, the ones where the word weighs most are scored
    (not the oldest), and its rarity is counted over all of the user's chunks."""
    monkeypatch.setattr("services.documents.user_bm25.MAX_MATCHES_PER_TERM", 5)
    filler = "\n\n".join(f"Note {n}: a manatee was seen near the harbour wall; " + "x " * 300
                          for n in range(12))
    assert upload(client, "filler.md", filler.encode()).status_code == 201
    best = upload(client, "best.md", b"Manatee facts: the manatee grazes on seagrass.")
    assert best.status_code == 201
    with database(app).transaction() as session:
        found = search(session, "usr_local", "manatee", None, limit=3)
    assert found[0].filename == "best.md"
    assert found[0].score > 0


def test_delete_removes_chunks_and_index_rows(app, client, backend):
    document = upload_fixture(client, "handbook.md")
    assert client.delete(f"/api/v1/documents/{document['id']}").status_code == 204
    assert chunks_of(app, document["id"]) == []
    with database(app).transaction() as session:
        assert search(session, "usr_local", "annual leave holidays", None) == []
        if backend.name == "sqlite":  # the FTS5 index itself, not only what joins to it
            left = session.execute(sqlalchemy.text(
                "SELECT count(*) FROM document_chunks_fts WHERE document_chunks_fts "
                "MATCH 'holidays'")).scalar_one()
            assert left == 0
    assert client.get("/api/v1/documents").get_json()["documents"] == []


def _zip_bomb() -> bytes:
    writer = PdfWriter()
    page = writer.add_blank_page(612, 792)
    bomb = StreamObject()
    bomb._data = zlib.compress(b" " * (200 * 1024 * 1024), 9)
    bomb[NameObject("/Filter")] = NameObject("/FlateDecode")
    page[NameObject("/Contents")] = writer._add_object(bomb)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def _slow_page(operators: int = 60_000) -> bytes:
    """A small PDF whose one page is a long run of text operators: seconds of pypdf."""
    writer = PdfWriter()
    page = _helvetica_page(writer)
    content = StreamObject()
    content._data = zlib.compress(b"BT /F1 12 Tf 10 10 Td (x) Tj ET\n" * operators, 9)
    content[NameObject("/Filter")] = NameObject("/FlateDecode")
    page[NameObject("/Contents")] = writer._add_object(content)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)  # a worker's matter, not the DB's
def test_a_slow_pdf_does_not_stall_the_other_requests_of_its_worker(start_server):
    """pypdf is pure Python: read on gevent's hub, one slow page held every request and
    stream of the worker (25 s in an outside probe). It reads on a thread of its own,
    so the worker answers meanwhile."""
    server = start_server()  # one gevent worker
    pdf = _slow_page()
    with ThreadPoolExecutor(1) as pool:
        uploading = pool.submit(requests.post, f"{server.url}/api/v1/documents",
                                files={"file": ("slow.pdf", pdf, "application/pdf")},
                                timeout=60)
        time.sleep(1.0)  # well into the reading
        assert not uploading.done(), "the PDF was read too fast to show anything"
        assert requests.get(f"{server.url}/healthz", timeout=60).status_code == 200
        assert not uploading.done()  # answered while the same worker was reading it
        assert uploading.result().status_code in (201, 400)


def _many_pages(count: int = 600) -> bytes:
    writer = PdfWriter()
    for _ in range(count):
        writer.add_blank_page(10, 10)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


@pytest.mark.parametrize(("make", "reason"), [
    (lambda: b"%PDF-1.7\n1 0 obj << /Type /Catalog /Pages 9 0 R >>\ntrailer garbage", "PDF"),
    (lambda: b"not a pdf at all", "not a PDF"),
    (_many_pages, "pages"),
    # pypdf stops inflating at its lowered limit: nothing (or an error) comes out of it.
    (_zip_bomb, ""),
])
def test_hostile_pdfs_fail_clearly_and_quickly(client, make, reason):
    data = make()
    started = time.monotonic()
    response = upload(client, "hostile.pdf", data, "application/pdf")
    assert time.monotonic() - started < 10
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["code"] == "unreadable_document" and reason in error["message"]
    assert "PDF" in error["message"] or "no text" in error["message"]
    assert client.get("/api/v1/documents").get_json()["documents"] == []


def test_size_and_type_limits(make_app):
    client = make_app(SLUICE_DOCUMENT_MAX_BYTES=2000).test_client()
    too_big = upload(client, "big.txt", b"word " * 1000)
    assert too_big.status_code == 413
    assert too_big.get_json()["error"]["code"] == "document_too_large"
    way_too_big = upload(client, "big.txt", b"word " * 100_000)
    assert way_too_big.status_code == 413
    assert way_too_big.get_json()["error"]["code"] == "document_too_large"
    odd = upload(client, "sheet.xlsx", b"PK\x03\x04", "application/vnd.ms-excel")
    assert odd.status_code == 415 and odd.get_json()["error"]["code"] == "unsupported_document_type"
    as_json = client.post("/api/v1/documents", json={"file": "x"})
    assert as_json.status_code == 415
    no_file = upload(client, "a.txt", b"hello", field="other")
    assert no_file.status_code == 400 and no_file.get_json()["error"]["code"] == "missing_file"


def test_a_document_job_cancelled_while_queued_fails_its_document(make_app):
    """The document does not stay `processing` forever: it fails, saying why, and
    cannot be attached; the job has no webhook to send."""
    app = make_app(SLUICE_DOCUMENT_INLINE_BYTES=500)  # no worker: the job stays queued
    client = app.test_client()
    body = upload(client, "handbook.md", (FIXTURES / "handbook.md").read_bytes()).get_json()
    job_id = body["job"]["id"]
    assert client.post(f"/api/v1/jobs/{job_id}/cancel").status_code == 202
    job = client.get(f"/api/v1/jobs/{job_id}").get_json()["job"]
    assert job["status"] == "cancelled"
    assert job["webhook"]["status"] == "none" and job["webhook"]["deliveries"] == []
    document = client.get(f"/api/v1/documents/{body['document']['id']}").get_json()["document"]
    assert (document["status"], document["error"]) == (
        "failed", "Indexing was cancelled before it began; upload the file again.")
    attach = client.post("/api/v1/threads", json={"documents": [document["id"]]})
    assert attach.status_code == 400


def test_a_large_document_is_indexed_by_a_job(make_app):
    app = make_app(SLUICE_DOCUMENT_INLINE_BYTES=500)
    jobs(app).start(workers=1)
    client = app.test_client()
    try:
        response = upload(client, "handbook.md", (FIXTURES / "handbook.md").read_bytes())
        assert response.status_code == 202, response.get_json()
        body = response.get_json()
        assert body["document"]["status"] == "processing" and body["job"]["kind"] == "document"
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            job = client.get(f"/api/v1/jobs/{body['job']['id']}").get_json()["job"]
            if job["status"] not in ("queued", "running"):
                break
            time.sleep(0.05)
        assert job["status"] == "complete" and job["webhook"]["status"] == "none"
        assert job["result"]["document"]["status"] == "ready"
        document = client.get(f"/api/v1/documents/{body['document']['id']}").get_json()
        assert document["document"]["status"] == "ready"
        assert document["document"]["chunk_count"] >= 1
        events = client.get(f"/api/v1/jobs/{job['id']}/events")
        if events.status_code == 200:
            text = events.get_data(as_text=True)
            assert "indexing" in text and "event: done" in text
    finally:
        jobs(app).stop()
