"""Mails from templates/: the Jinja2 environment and its filters (templates.py), the digest and
notice mails (mails.py), and a snippet's highlighting (snippet.py). No I/O after start."""
