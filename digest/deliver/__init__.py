"""The daily send: who is due (planner.py), what a send's outcome does to a row (outcome.py), the
one compose -> render -> message path (messages.py), the ledgers a send works over (ledgers.py:
the real one, and the read-only one of a dry run or test send), and the send loop (sender.py)."""
