"""Mail out: header safety (headers.py), MIME messages with the list headers and DKIM (message.py),
and the transports that carry them (transports.py)."""
