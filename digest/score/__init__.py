"""Scoring papers against interests: text analysis (text.py), the interest language
(interests.py), the papers' index (index.py), ranking every subscriber at once (rank.py, over the
compiled kernel in kernels.py) and explanations as data (explain.py). No I/O."""
