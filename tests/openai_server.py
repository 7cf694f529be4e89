"""A small OpenAI-compatible server on 127.0.0.1 over our model code, for tests of the endpoint writer:
POST /v1/chat/completions and GET /v1/models, with an optional bearer key.

    with OpenAIServer(lm.complete, model="tiny") as server:   # a free port, a thread; stopped on exit
        writer = {"base_url": server.base_url, "model": "tiny"}

`complete` has LanguageModel.complete's shape, (messages, max_new_tokens, temperature, n, seed) ->
[message][sample]; a reply of None is sent as a message without content (a broken server).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Complete = Callable[..., list[list[str | None]]]


class OpenAIServer:
    def __init__(
        self,
        complete: Complete,
        model: str = "tiny",
        api_key: str | None = None,
        count_tokens: Callable[[str], int] = lambda text: len(text.split()),
        cost_per_token: float | None = None,  # reported as usage.cost, as some gateways do
    ) -> None:
        self.complete, self.model, self.api_key = complete, model, api_key
        self.count_tokens, self.cost_per_token = count_tokens, cost_per_token
        self.requests: list[dict[str, Any]] = []  # every chat request's body, in order
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def __enter__(self) -> OpenAIServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)

    # ---- what a request gets --------------------------------------------------------------------
    def chat(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if body.get("model") != self.model:
            return 404, _error(f"The model `{body.get('model')}` does not exist.", "model_not_found")
        self.requests.append(body)
        message = "\n".join(m["content"] for m in body["messages"] if m.get("role") == "user")
        n = int(body.get("n") or 1)
        replies = self.complete(
            [message],
            int(body.get("max_tokens") or 64),
            temperature=float(body.get("temperature") or 0.0),
            n=n,
            seed=body.get("seed"),
        )[0]
        prompt_tokens = self.count_tokens(message)
        completion_tokens = sum(self.count_tokens(r) for r in replies if r is not None)
        usage: dict[str, Any] = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        }
        if self.cost_per_token is not None:
            usage["cost"] = (prompt_tokens + completion_tokens) * self.cost_per_token
        choices = [
            {"index": i, "message": {"role": "assistant", "content": r}, "finish_reason": "stop"}
            for i, r in enumerate(replies)
        ]
        return 200, {
            "id": f"chatcmpl-{len(self.requests)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": self.model,
            "choices": choices,
            "usage": usage,
        }


def _error(message: str, code: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": "invalid_request_error", "code": code}}


def _handler(server: OpenAIServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:  # quiet: tests read the requests, not a log
            pass

        def _send(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _authorized(self) -> bool:
            if server.api_key is None or self.headers.get("Authorization") == f"Bearer {server.api_key}":
                return True
            self._send(401, _error("Incorrect API key provided.", "invalid_api_key"))
            return False

        def do_GET(self) -> None:
            if not self._authorized():
                return
            if self.path.rstrip("/") == "/v1/models":
                self._send(200, {"object": "list", "data": [{"id": server.model, "object": "model"}]})
            else:
                self._send(404, _error(f"no route {self.path}", "not_found"))

        def do_POST(self) -> None:
            if not self._authorized():
                return
            if self.path.rstrip("/") != "/v1/chat/completions":
                self._send(404, _error(f"no route {self.path}", "not_found"))
                return
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
            self._send(*server.chat(body))

    return Handler
