"""Choosing each subscriber's papers for a day: the digest as plain data and the rules that pick
it from a ranking (digest.py), and the Composer over a Reader of the store (choose.py)."""
