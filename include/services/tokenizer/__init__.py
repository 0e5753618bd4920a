"""The tokenization service: opens PAN envelopes, answers keyed tokens, keeps a PCI-DSS vault.

Run it (the devstack and docker-compose.yaml both do this)::

    python -m uvicorn --app-dir include/services tokenizer.app:app --host 127.0.0.1 --port 8097

It is not part of the installed ``flowgate`` package on purpose: it is the only process
that ever holds the envelope private key and the token HMAC key, and it has its own
database role. ``--app-dir`` puts ``include/services`` on its import path only.
"""
