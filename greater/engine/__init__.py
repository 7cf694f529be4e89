"""The engine: the only code that touches a key-value cache or a pad id.

kv (the cache and padding: prefill, extend, append, select), decode (greedy with drafts, and an end per row:
a tail scored or an answer decoded from the row's cache), passes (the batched passes LanguageModel delegates
to), frame (slots, answer sequences, extractor), gradient, losses, rollouts (the shared scorer), the prefix
store and the out-of-memory back-off.
"""
