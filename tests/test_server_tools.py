"""Server tools: where they come from, how a turn's calls run (and fail), the built-in
tools, and how a request names them. No packet leaves this machine: fetch_url is
pointed at a local server, and refusals are checked with the `net` fixture."""
from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib.metadata import EntryPoint

import pytest

from services.config import ConfigError, settings_from_env
from services.errors import ApiError
from services.providers import ToolCall
from services.storage import Database, Message, Thread
from services.storage.migrate import upgrade_database
from services.tools import (ToolContext, ToolRegistry, ToolResult, load_tools,
                            parse_tools, run_calls, server_tool)
from services.tools import registry as registry_module
from services.tools.builtin.calculator import calculator
from services.tools.builtin.current_time import current_time
from services.tools.builtin.fetch_url import fetch_url, redirect_target
from services.tools.builtin.search_thread import search_thread
from services.tools.registry import ToolError

BUILTINS = ("calculator", "current_time", "fetch_url", "search_thread")


def context(**overrides) -> ToolContext:
    return ToolContext(**{"user_id": "usr_local", "thread_id": None, **overrides})


# --- where tools come from ---------------------------------------------------------

def test_the_built_in_tools_are_registered_with_what_a_model_is_told():
    registry = load_tools(())
    assert registry.names() == BUILTINS
    spec = registry.get("calculator").spec()
    assert spec.name == "calculator" and "expression" in spec.parameters["properties"]
    assert "nothing" not in registry and registry.get("nothing") is None


def test_a_module_named_in_the_settings_adds_its_tools():
    assert settings_from_env({"SLUICE_TOOL_MODULES": " tests.tool_plugins.dice, x.y "}) == {
        "SLUICE_TOOL_MODULES": ("tests.tool_plugins.dice", "x.y")}
    registry = load_tools(("tests.tool_plugins.dice",))
    assert registry.names() == tuple(sorted((*BUILTINS, "roll_dice")))
    assert registry.get("roll_dice")(context(), {}) == "4"


@pytest.mark.parametrize(("module", "message"), [
    ("tests.tool_plugins.clash", "'calculator' from module tests.tool_plugins.clash: the name "
                                 "is taken by the tool from module services.tools.builtin"),
    ("tests.tool_plugins.bad_name", "'roll dice!' from module tests.tool_plugins.bad_name"),
    ("tests.tool_plugins.missing", "SLUICE_TOOL_MODULES: cannot import 'tests.tool_plugins"),
])
def test_a_tool_that_cannot_be_registered_stops_startup_naming_it(module, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        load_tools((module,))


@pytest.mark.parametrize("value", ["tests.tool_plugins.dice",
                                   "tests.tool_plugins.dice:roll_dice"])
def test_an_entry_point_may_name_a_module_or_a_tool(monkeypatch, value):
    entry = EntryPoint("dice", value, "sluice.tools")
    monkeypatch.setattr(registry_module, "entry_points", lambda group: [entry])
    assert "roll_dice" in load_tools(())
    with pytest.raises(ConfigError, match=r"'roll_dice' from .*taken by the tool from module "
                                          r"tests.tool_plugins.dice"):
        load_tools(("tests.tool_plugins.dice",))


# --- running a turn's calls --------------------------------------------------------

@server_tool(description="Waits half a second.", parameters={"type": "object"})
def nap(context: ToolContext, arguments: dict) -> str:
    time.sleep(0.5)
    return "rested"


@server_tool(description="Adds.", parameters={
    "type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
    "required": ["a", "b"]})
def add(context: ToolContext, arguments: dict) -> dict:
    return {"sum": arguments["a"] + arguments["b"]}


@server_tool(description="Breaks.", parameters={"type": "object"})
def broken(context: ToolContext, arguments: dict) -> str:
    raise RuntimeError("the flux capacitor is gone")


@server_tool(description="Talks too much.", parameters={"type": "object"}, max_output=100)
def chatty(context: ToolContext, arguments: dict) -> str:
    return "x" * 101


SAW_CANCEL = threading.Event()


@server_tool(description="Waits until cancelled.", parameters={"type": "object"}, timeout=0.3)
def stuck(context: ToolContext, arguments: dict) -> str:
    if context.cancelled.wait(5):
        SAW_CANCEL.set()
    return "too late"


@pytest.fixture
def registry() -> ToolRegistry:
    registry = ToolRegistry()
    for tool in (nap, add, broken, chatty, stuck):
        registry.add(tool, "tests")
    return registry


def call(name: str, arguments: str = "{}", call_id: str | None = None) -> ToolCall:
    return ToolCall(call_id or f"call_{name}", name, arguments)


def test_calls_run_at_the_same_time_and_come_back_in_order(registry):
    heard: list[ToolResult] = []
    started = time.monotonic()
    results = run_calls(registry, [call("nap", call_id="1"), call("nap", call_id="2"),
                                   call("add", '{"a": 2, "b": 3}')], context(), heard.append)
    assert time.monotonic() - started < 0.9
    assert [result.id for result in results] == ["1", "2", "call_add"]
    assert results[2].result == '{"sum": 5}' and results[2].content() == '{"sum": 5}'
    assert heard[0].name == "add"  # the quick one is reported first
    assert sorted(result.id for result in heard) == ["1", "2", "call_add"]
    assert results[0].payload() == {"id": "1", "name": "nap", "result": "rested",
                                    "duration_ms": results[0].duration_ms}


@pytest.mark.parametrize(("bad", "error"), [
    (call("nowhere"), "there is no server tool 'nowhere'"),
    (call("add", '{"a": 1'), "not valid JSON"),
    (call("add", "[1, 2]"), "must be a JSON object"),
    (call("add", '{"a": 1, "b": "two"}'), "argument 'b': 'two' is not of type 'integer'"),
    (call("add", '{"a": 1}'), "'b' is a required property"),
    (call("broken"), "the flux capacitor is gone"),
    (call("chatty"), "101 characters long, over the limit of 100"),
    (call("stuck"), "timed out after 0.3s"),
])
def test_a_call_that_goes_wrong_is_an_error_result_and_the_others_are_unaffected(
        registry, bad, error):
    results = run_calls(registry, [bad, call("add", '{"a": 1, "b": 1}')], context(),
                        lambda result: None)
    assert results[0].result is None and error in results[0].error
    assert results[0].content() == f"Error: {results[0].error}"
    assert set(results[0].payload()) == {"id", "name", "error", "duration_ms"}
    assert results[1].result == '{"sum": 2}'


def test_a_cancelled_answer_stops_waiting_at_once_and_the_tool_is_told(registry):
    SAW_CANCEL.clear()
    registry.add(server_tool("stuck_long", description="", parameters={"type": "object"},
                             timeout=10)(stuck.function), "tests")
    cancelled = context()
    threading.Timer(0.2, cancelled.cancelled.set).start()
    started = time.monotonic()
    heard: list[ToolResult] = []
    ended = run_calls(registry, [call("stuck_long"), call("add", '{"a": 1, "b": 1}')],
                      cancelled, heard.append)
    assert time.monotonic() - started < 0.5
    assert SAW_CANCEL.wait(1)
    assert [result.name for result in heard] == [result.name for result in ended] == ["add"]


# --- calculator --------------------------------------------------------------------

@pytest.mark.parametrize(("expression", "value"), [
    ("1 + 2 * 3", "7"), ("(1 + 2) * 3", "9"), ("2 ** 3 ** 2", "512"), ("-2 ** 2", "-4"),
    ("7 / 2", "3.5"), ("7 // 2", "3"), ("-7 % 3", "2"), ("sqrt(16) + abs(-3)", "7"),
    ("round(pi, 3)", "3.142"), ("2 ** 100", "1267650600228229401496703205376"),
    ("0.1 + 0.2", "0.30000000000000004"), ("10 / 4 * 2", "5"),
])
def test_the_calculator_computes_with_the_usual_precedence(expression, value):
    assert calculator(context(), {"expression": expression}) == value


@pytest.mark.parametrize(("expression", "error"), [
    ("__import__('os').system('true')", "function \"__import__\\('os'\\).system\" is not"),
    ("__import__('os')", "function '__import__' is not available"),
    ("x + 1", "unknown name 'x'"),
    ("(1).__class__", "Attribute is not allowed"),
    ("open('/etc/passwd')", "'open' is not available"),
    ("[1, 2][0]", "is not allowed"),
    ("9 ** 9 ** 9", "exponent 387420489 is too large"),
    ("10 ** 5000", "digits"),
    ("1e308 * 10", "too large"),
    ("1e999 - 1e999", "too large"),  # not nan: an infinite literal is refused
    ("round(123, -10**9)", "at most 1000 digits"),  # not 10**(10**9) first
    ("round(1.5, 10**9)", "at most 1000 digits"),
    ("1 / 0", "division by zero"),
    ("5 % 0", "division by zero"),
    ("sqrt(-1)", "cannot compute"),
    ("1 +", "is not an arithmetic expression"),
    ("lambda: 1", "Lambda is not allowed"),
])
def test_the_calculator_refuses_anything_but_arithmetic_quickly(expression, error):
    started = time.monotonic()
    with pytest.raises(ToolError, match=error):
        calculator(context(), {"expression": expression})
    assert time.monotonic() - started < 0.5


def test_the_calculator_refuses_an_overlong_expression():
    with pytest.raises(ToolError, match="longer than 500"):
        calculator(context(), {"expression": "1+" * 250 + "1"})


# --- current_time ------------------------------------------------------------------

def test_current_time_is_utc_unless_a_zone_is_named():
    utc = current_time(context(), {})
    assert utc["timezone"] == "UTC" and utc["time"].endswith("+00:00")
    tokyo = current_time(context(), {"timezone": "Asia/Tokyo"})
    assert tokyo["time"].endswith("+09:00") and tokyo["weekday"] in (
        "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


@pytest.mark.parametrize("zone", ["Mars/Olympus_Mons", "America", "../../etc/passwd"])
def test_current_time_refuses_an_unknown_zone(zone):
    with pytest.raises(ToolError, match="unknown time zone"):
        current_time(context(), {"timezone": zone})


# --- fetch_url ---------------------------------------------------------------------

PAGE = b"""<!doctype html><html><head><title>The  Title</title>
<style>body { color: red }</style><script>alert("secret script")</script></head>
<body><h1>Heading</h1><p>First   paragraph
spans lines.</p><p>Second<br>line two</p><noscript>no script here</noscript></body></html>"""


class _Pages(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path.startswith("/hop/"):
            left = int(self.path.rsplit("/", 1)[1])
            return self._send(302, b"", "text/plain",
                              location="/plain" if left == 0 else f"/hop/{left - 1}")
        if self.path == "/to-metadata":
            return self._send(302, b"", "text/plain",
                              location="http://169.254.169.254/latest/meta-data/")
        pages = {"/page": (PAGE, "text/html; charset=utf-8"),
                 "/plain": (b"just text\n  kept as is", "text/plain"),
                 "/json": (b'{"a": 1}', "application/json"),
                 "/big": (b"y" * (3 * 1024 * 1024), "text/plain"),
                 "/image": (b"\x89PNG", "image/png")}
        body, kind = pages.get(self.path, (b"nope", "text/plain"))
        self._send(200 if self.path in pages else 404, body, kind)

    def _send(self, status: int, body: bytes, kind: str, location: str | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        if location:
            self.send_header("Location", location)
        self.end_headers()
        try:
            self.wfile.write(body)
        except OSError:
            pass  # the reader stopped at its size limit

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def pages() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Pages)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def fetch(url: str, allow_private: bool = True) -> str:
    return fetch_url(context(allow_private=allow_private), {"url": url})


def test_fetch_url_reduces_html_to_its_text(net, pages):
    text = fetch(pages + "/page")
    assert text.startswith(f"URL: {pages}/page\n\nThe Title\n\n")
    assert "Heading\n\nFirst paragraph spans lines.\n\nSecond\nline two" in text
    assert "secret script" not in text and "color" not in text and "no script" not in text


def test_fetch_url_returns_text_and_json_as_they_are(net, pages):
    assert fetch(pages + "/plain").endswith("\n\njust text\n  kept as is")
    assert fetch(pages + "/json").endswith('\n\n{"a": 1}')
    with pytest.raises(ToolError, match="image/png"):
        fetch(pages + "/image")
    with pytest.raises(ToolError, match="answered 404"):
        fetch(pages + "/missing")


def test_fetch_url_cuts_a_large_page_to_fit(net, pages):
    text = fetch(pages + "/big")
    assert len(text) <= fetch_url.max_output and text.endswith("\n[truncated]")


def test_fetch_url_follows_three_redirects_and_no_more(net, pages):
    assert fetch(pages + "/hop/2").startswith(f"URL: {pages}/plain\n")
    with pytest.raises(ToolError, match="more than 3 redirects"):
        fetch(pages + "/hop/3")


def test_a_redirect_to_cloud_metadata_is_refused_before_any_connection(net, pages):
    with pytest.raises(ToolError, match="169.254.169.254 is a cloud metadata address"):
        fetch(pages + "/to-metadata")
    assert net.take_blocked() == []


@pytest.mark.parametrize("location", ["http://127.0.0.1:8080/admin", "//10.0.0.1/",
                                      "http://localhost/", "ftp://files.example/"])
def test_each_redirect_hop_is_checked_like_the_first_url(location):
    with pytest.raises(ToolError, match="cannot fetch"):
        redirect_target("https://news.example/story", location, allow_private=False)
    assert redirect_target("https://news.example/a/b", "../c?d=1", False).url == \
        "https://news.example/c?d=1"


@pytest.mark.parametrize(("url", "addresses", "reason"), [
    ("http://10.0.0.1/", (), "private"),
    ("http://127.0.0.1:9/", (), "loopback"),
    ("http://169.254.169.254/latest/meta-data/", (), "metadata"),
    ("http://news.example/", ("10.2.3.4",), "news.example resolves to 10.2.3.4"),
    ("http://news.example/", ("169.254.169.254",), "metadata"),
    ("http://news.example/", ("93.184.215.14", "192.168.0.2"), "private"),
])
def test_fetch_url_refuses_private_places_unless_allowed(net, url, addresses, reason):
    if addresses:
        net.resolves("news.example", *addresses)
    with pytest.raises(ToolError, match=reason):
        fetch(url, allow_private=False)
    assert net.take_blocked() == []


# --- search_thread -----------------------------------------------------------------

@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> Database:
    url = f"sqlite:///{tmp_path_factory.mktemp('tools') / 'search.db'}"
    upgrade_database(url)
    return Database(url)


def thread_with(db: Database, *contents: str) -> tuple[str, list[str]]:
    thread = Thread(title="t")
    messages = [Message(position=index, role="user" if index % 2 == 0 else "assistant",
                        content=content) for index, content in enumerate(contents)]
    thread.messages = messages
    with db.transaction() as session:
        session.add(thread)
    return thread.id, [message.id for message in messages]


def test_search_thread_ranks_this_threads_messages_by_words_found(database):
    thread_id, ids = thread_with(
        database, "Our cat is called Tom.", "Nice! What colour is Tom the CAT?",
        "Unrelated: the weather.", "x " * 400 + "Tom sleeps all day long " + "y " * 400)
    other_id, _ = thread_with(database, "The other thread has a cat named Tom too.")
    found = search_thread(context(thread_id=thread_id, db=database), {"query": "cat tom"})
    assert [match["message_id"] for match in found] == [ids[1], ids[0], ids[3]]
    assert found[0] == {"message_id": ids[1], "role": "assistant", "position": 1,
                        "excerpt": "Nice! What colour is Tom the CAT?"}
    long_excerpt = found[2]["excerpt"]
    assert len(long_excerpt) <= 300 and "Tom sleeps" in long_excerpt
    assert long_excerpt.startswith("…") and long_excerpt.endswith("…")
    assert len(search_thread(context(thread_id=thread_id, db=database),
                             {"query": "tom", "limit": 1})) == 1
    assert search_thread(context(thread_id=other_id, db=database), {"query": "colour"}) == []


def test_search_thread_needs_a_thread():
    with pytest.raises(ToolError, match="search_thread only works in a chat thread"):
        search_thread(context(), {"query": "anything"})


# --- naming tools in a request -----------------------------------------------------

FUNCTION = {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}


def test_a_request_may_name_server_tools_next_to_its_own_functions():
    registry = load_tools(())
    assert parse_tools(None, registry) == ((), ())
    specs, names = parse_tools(["calculator", FUNCTION, "current_time"], registry)
    assert [spec.name for spec in specs] == ["lookup"]
    assert names == ("calculator", "current_time")


def test_an_unknown_server_tool_is_refused_listing_those_there_are():
    with pytest.raises(ApiError) as refused:
        parse_tools(["weather"], load_tools(()))
    assert (refused.value.status, refused.value.code) == (400, "unknown_tool")
    assert "'weather'" in refused.value.message and ", ".join(BUILTINS) in refused.value.message


@pytest.mark.parametrize(("parameters", "error"), [
    ({"type": "string"}, 'must be a JSON Schema with "type": "object"'),
    ({"properties": {"a": {"type": "string"}}}, 'must be a JSON Schema with "type": "object"'),
    ({"type": "object", "properties": {"a": {"type": "bogus"}}}, "not a valid JSON Schema"),
    ({"type": "object", "required": "a"}, "not a valid JSON Schema"),
])
def test_a_function_schema_a_provider_would_refuse_is_a_400(parameters, error):
    function = {"type": "function", "function": {"name": "f", "parameters": parameters}}
    with pytest.raises(ApiError, match=error) as refused:
        parse_tools([function], load_tools(()))
    assert (refused.value.status, refused.value.code) == (400, "invalid_tools")


def test_a_function_may_not_take_a_requested_server_tools_name():
    clash = {"type": "function", "function": {"name": "calculator"}}
    with pytest.raises(ApiError, match="'calculator' has the name of a server tool") as refused:
        parse_tools(["calculator", clash], load_tools(()))
    assert (refused.value.status, refused.value.code) == (400, "invalid_tools")
    with pytest.raises(ApiError, match="Two tools have the same name"):
        parse_tools(["calculator", "calculator"], load_tools(()))
