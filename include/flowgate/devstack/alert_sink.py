"""Where local alerts land: a webhook receiver that appends each alert to a JSONL file.

In production the ``alert_webhook`` connection points at Slack (or any incoming
webhook); locally it points here, so on-call alerts can be read in
``.flowgate/logs/alerts.jsonl`` and tests can check that an alert was really sent.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import uvicorn
from fastapi import FastAPI, Request


def build_app(out: Path) -> FastAPI:
    app = FastAPI(title="flowgate alert sink")

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/hooks/{channel}")
    async def receive(channel: str, request: Request) -> str:
        body = await request.body()
        try:
            payload = json.loads(body)
        except ValueError:
            payload = {"text": body.decode(errors="replace")}
        record = {"received_at": time.time(), "channel": channel, "payload": payload}
        with out.open("a") as f:
            f.write(json.dumps(record) + "\n")
        return "ok"  # Slack's webhook answers a plain "ok"; the Slack client checks for it

    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    uvicorn.run(build_app(args.out), host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
