"""A local fake of the OpenAI, Anthropic and Gemini text APIs with scripted answers, for tests.

Tests run the official SDKs against it through their base URLs, so the JSON shapes follow each
vendor's own. Standard library only::

    with FakeLLMServer() as fake:                              # 127.0.0.1, a random free port
        fake.script("openai", Reply.rate_limited(), Reply.json({"name": "rsi dip"}))
        client = OpenAI(api_key="k", base_url=fake.openai_base_url)
        ...
        assert len(fake.requests("openai")) == 2

What it serves:

- ``POST /v1/chat/completions`` (OpenAI Chat Completions; also what OpenAI-compatible servers speak),
- ``POST /v1/messages`` (Anthropic Messages),
- ``POST /v1beta/models/<model>:generateContent`` (Gemini through google-genai; only API version
  v1beta, so a client left on the SDK's default v1 gets a 404).

Each API answers its scripted replies in order, one a request. A request with nothing scripted
gets a 400 "nothing scripted" in the vendor's error shape (a permanent error, never retried), so
a test that forgets a reply fails clearly. Every request is logged with its headers and JSON body.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections import defaultdict, deque
from collections.abc import Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

OPENAI, ANTHROPIC, GEMINI = "openai", "anthropic", "gemini"
APIS = (OPENAI, ANTHROPIC, GEMINI)
_GEMINI_PATH = re.compile(r"^/v1beta/models/(?P<model>[^/:]+):generateContent$")
_OPENAI_ERROR_TYPES = {400: "invalid_request_error", 429: "rate_limit_exceeded"}
_ANTHROPIC_ERROR_TYPES = {400: "invalid_request_error", 429: "rate_limit_error", 529: "overloaded_error"}
_GEMINI_ERROR_STATUSES = {400: "INVALID_ARGUMENT", 429: "RESOURCE_EXHAUSTED", 503: "UNAVAILABLE"}


@dataclass(frozen=True)
class Reply:
    """One scripted answer: the model's text with a 200, or an error status, maybe after a delay.

    ``delay`` holds the request before answering; longer than the client's timeout, the client
    gives up first (the reply is then never read).
    """

    text: str = ""
    status: int = 200
    error_message: str = ""
    retry_after: float | None = None
    delay: float = 0.0
    tokens_in: int = 120
    tokens_out: int = 40

    @classmethod
    def json(cls, payload: Any, *, tokens_in: int = 120, tokens_out: int = 40) -> Reply:
        """The model answers with ``payload`` as JSON text."""
        return cls(text=json.dumps(payload), tokens_in=tokens_in, tokens_out=tokens_out)

    @classmethod
    def answer(cls, text: str) -> Reply:
        """The model answers with exactly ``text`` (prose, a fenced block, broken JSON)."""
        return cls(text=text)

    @classmethod
    def malformed_json(cls) -> Reply:
        """An answer cut off in the middle of a JSON object."""
        return cls(text='{"name": "RSI dip", "entry": "RSI(14) < 30", "stop_loss_pct": 0.0')

    @classmethod
    def rate_limited(cls, retry_after: float | None = 0) -> Reply:
        return cls(status=429, error_message="Rate limit reached; try again later.", retry_after=retry_after)

    @classmethod
    def server_error(cls, status: int = 500) -> Reply:
        return cls(status=status, error_message="The server had an error while processing your request.")

    @classmethod
    def slow(cls, seconds: float, payload: Any = None) -> Reply:
        """Hold the request ``seconds`` before answering ``payload`` (past a client timeout)."""
        return cls(text=json.dumps(payload if payload is not None else {}), delay=seconds)


@dataclass(frozen=True)
class RecordedRequest:
    """One request the fake received: which API, path, headers (lower-case names), JSON body, and
    when (``time.monotonic()``) it arrived."""

    api: str
    method: str
    path: str
    headers: Mapping[str, str]
    body: Any
    status: int | None
    received_at: float


class FakeLLMServer:
    """Serves the three vendor APIs on 127.0.0.1 with scripted replies; see the module docstring."""

    def __init__(self) -> None:
        self._replies: dict[str, deque[Reply]] = defaultdict(deque)
        self._log: list[RecordedRequest] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def openai_base_url(self) -> str:
        return f"{self.url}/v1"

    @property
    def anthropic_base_url(self) -> str:
        return self.url

    @property
    def gemini_base_url(self) -> str:
        return self.url

    def __enter__(self) -> FakeLLMServer:
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, name="fake-llm", daemon=True
        )
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopping.set()  # release requests held by a delay
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def script(self, api: str, *replies: Reply) -> None:
        """Queue ``replies`` for the next requests to ``api`` (``openai``, ``anthropic``, ``gemini``)."""
        if api not in APIS:
            raise ValueError(f"unknown API {api!r}; expected one of {APIS}")
        with self._lock:
            self._replies[api].extend(replies)

    def requests(self, api: str | None = None) -> list[RecordedRequest]:
        """The requests received so far, oldest first, of one API or all."""
        with self._lock:
            return [request for request in self._log if api is None or request.api == api]

    def _route(self, method: str, path: str) -> tuple[str | None, str]:
        """The API a request is for (None when the fake does not serve the path) and its model."""
        if method != "POST":
            return None, ""
        if path == "/v1/chat/completions":
            return OPENAI, ""
        if path == "/v1/messages":
            return ANTHROPIC, ""
        match = _GEMINI_PATH.match(path)
        return (GEMINI, match["model"]) if match else (None, "")

    def _answer(
        self, method: str, path: str, headers: dict[str, str], raw_body: bytes
    ) -> tuple[int, dict[str, Any], list[tuple[str, str]], float]:
        """Status, JSON body, extra headers and the delay before sending, for one request."""
        api, path_model = self._route(method, path)
        try:
            body = json.loads(raw_body or b"null")
        except json.JSONDecodeError:
            body = raw_body.decode(errors="replace")
        if api is None:
            self._record(RecordedRequest("unknown", method, path, headers, body, 404, time.monotonic()))
            return 404, {"error": {"message": f"Not found: {method} {path}"}}, [], 0.0
        with self._lock:
            reply = self._replies[api].popleft() if self._replies[api] else None
        if reply is None:
            reply = Reply(status=400, error_message=f"The fake has nothing scripted for {api}.")
        self._record(RecordedRequest(api, method, path, headers, body, reply.status, time.monotonic()))
        model = path_model or (body.get("model", "") if isinstance(body, dict) else "")
        extra = [] if reply.retry_after is None else [("Retry-After", f"{reply.retry_after:g}")]
        if reply.status != 200:
            return reply.status, _ERROR_BODIES[api](reply), extra, reply.delay
        return 200, _SUCCESS_BODIES[api](reply, model), extra, reply.delay

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self._log.append(request)


def _openai_success(reply: Reply, model: str) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": reply.text, "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": reply.tokens_in,
            "completion_tokens": reply.tokens_out,
            "total_tokens": reply.tokens_in + reply.tokens_out,
        },
    }


def _openai_error(reply: Reply) -> dict[str, Any]:
    kind = _OPENAI_ERROR_TYPES.get(reply.status, "server_error")
    return {"error": {"message": reply.error_message, "type": kind, "param": None, "code": kind}}


def _anthropic_success(reply: Reply, model: str) -> dict[str, Any]:
    return {
        "id": f"msg_{uuid.uuid4().hex[:24]}",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": reply.text}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": reply.tokens_in, "output_tokens": reply.tokens_out},
    }


def _anthropic_error(reply: Reply) -> dict[str, Any]:
    kind = _ANTHROPIC_ERROR_TYPES.get(reply.status, "api_error")
    return {"type": "error", "error": {"type": kind, "message": reply.error_message}}


def _gemini_success(reply: Reply, model: str) -> dict[str, Any]:
    return {
        "candidates": [
            {
                "content": {"role": "model", "parts": [{"text": reply.text}]},
                "finishReason": "STOP",
                "index": 0,
            }
        ],
        "usageMetadata": {
            "promptTokenCount": reply.tokens_in,
            "candidatesTokenCount": reply.tokens_out,
            "totalTokenCount": reply.tokens_in + reply.tokens_out,
        },
        "modelVersion": model,
        "responseId": uuid.uuid4().hex[:20],
    }


def _gemini_error(reply: Reply) -> dict[str, Any]:
    status = _GEMINI_ERROR_STATUSES.get(reply.status, "INTERNAL")
    return {"error": {"code": reply.status, "message": reply.error_message, "status": status}}


_SUCCESS_BODIES = {OPENAI: _openai_success, ANTHROPIC: _anthropic_success, GEMINI: _gemini_success}
_ERROR_BODIES = {OPENAI: _openai_error, ANTHROPIC: _anthropic_error, GEMINI: _gemini_error}


def _handler_for(fake: FakeLLMServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as the SDKs' connection pools expect

        def _serve(self) -> None:
            path = self.path.split("?", 1)[0]
            length = int(self.headers.get("Content-Length") or 0)
            raw_body = self.rfile.read(length) if length else b""
            headers = {name.lower(): value for name, value in self.headers.items()}
            status, body, extra, delay = fake._answer(self.command, path, headers, raw_body)
            if delay and fake._stopping.wait(delay):
                self.close_connection = True
                return  # the server is stopping: drop the held request
            encoded = json.dumps(body).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(encoded)))
                for name, value in extra:
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(encoded)
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True  # the client gave up waiting (a timeout): nothing to answer

        do_GET = do_POST = do_PUT = do_DELETE = _serve

        def log_message(self, format: str, *args: Any) -> None:
            pass  # the request log is the fake's record; stderr noise would only clutter test output

    return Handler
