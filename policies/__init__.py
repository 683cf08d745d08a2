"""Semantic analysis: checks over the linked graph, and the organisation's CEL Policies.

policies.check defines what a check is; policies.registry lists them (sorted by name) and
runs them. Checks only read the graph and report; none raises for anything a user can write.
"""
