"""The engine: the only code that touches a key-value cache or a pad id.

frame (slots, answer sequences, extractor), decode (greedy with drafts, tails), kv passes, gradient, losses,
rollouts (the shared scorer), the prefix store and the out-of-memory back-off.
"""
