"""Comparing methods on your own runs: collect run directories into one table (collect), pair two methods'
final prompts in (task, seed) cells (cells), and read the comparison at that level (method_level, power)."""
